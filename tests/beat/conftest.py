"""Fixtures of the beat tests: a Redis client with beat's keys cleared, and a publisher that records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support import beat_probe
from tests.support.beat_support import RecordingPublisher, clean_redis


@pytest.fixture()
def client(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    """A Redis client on the session's database, with beat's keys and the probe worker's record cleared
    before and after."""
    c = redis.Redis.from_url(redis_url)
    clean_redis(c)
    c.delete(beat_probe.PROBE_KEY)
    yield c
    clean_redis(c)
    c.delete(beat_probe.PROBE_KEY)
    c.close()


@pytest.fixture()
def publisher() -> RecordingPublisher:
    """Records what beat publishes instead of sending it."""
    return RecordingPublisher()
