"""Fixtures of the run tests (a pytest plugin: `pytest_plugins = ["tests.support.run_support"]`): the
loopback integration API, fast settings, Redis lock clean-up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from models import keys
from models.settings import get_settings
from tests.support.integration_server import IntegrationServer, integration_server
from tests.support.run_helpers import FAST


@pytest.fixture()
def server() -> Iterator[IntegrationServer]:
    """A fresh loopback integration API per test."""
    with integration_server() as srv:
        yield srv


@pytest.fixture()
def fast(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process settings with fast retries, short timeouts and small batches and pages."""
    settings = get_settings()
    for name, value in FAST.items():
        monkeypatch.setattr(settings, name, value)


@pytest.fixture()
def rclient(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    """The test Redis; run and refresh locks are removed afterwards."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    for pattern in (keys.PREFIX + "run-lock:*", keys.PREFIX + "refresh-lock:*"):
        stale = list(client.scan_iter(pattern))
        if stale:
            client.delete(*stale)
