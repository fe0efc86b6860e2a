"""Fixtures of the fault suite: the loopback integration API, started processes stopped by pid, clean queues.

The `server`, `fast` and `rclient` fixtures are the engine tests' own (tests/support/run_support.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from models import keys
from tests.faults.own_redis import OwnRedis
from tests.support import processes
from tests.support.run_support import fast, rclient, server  # noqa: F401  (re-exported fixtures)

#: kombu's Redis transport keeps delivered-but-unacknowledged messages here; a test must not inherit them.
KOMBU_KEYS = ("unacked", "unacked_index", "unacked_mutex")
BEAT_KEYS = (keys.BEAT_LEADER_LOCK, keys.SCHEDULE_GENERATION, keys.RUN_QUEUE)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker every test here carries."""
    config.addinivalue_line("markers", "faults: the fault suite (real processes killed or cut off)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is a fault test and a slow one."""
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.slow)


def clean_queues(client: redis.Redis) -> None:
    """Drop queued and unacknowledged messages, beat's keys and run locks left by an earlier test."""
    client.delete(*BEAT_KEYS, *KOMBU_KEYS)
    stale = [*client.scan_iter(keys.PREFIX + "run-lock:*"), *client.scan_iter(keys.PREFIX + "resume:*")]
    if stale:
        client.delete(*stale)


@pytest.fixture()
def queues(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    """The session's Redis with no message, lock or leader left over, before and after the test."""
    client = redis.Redis.from_url(redis_url)
    clean_queues(client)
    yield client
    clean_queues(client)
    client.close()


@pytest.fixture()
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; every one still alive is stopped by its pid afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        processes.stop(proc)


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A started redis-server of this test's own (free loopback port, no persistence), stopped afterwards."""
    workdir = tmp_path / "own-redis"
    workdir.mkdir()
    own = OwnRedis(workdir)
    own.start()
    yield own
    own.stop()
