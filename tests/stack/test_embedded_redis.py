"""The embedded Redis of `make run`: where it listens, that it answers, that stopping it leaves nothing."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from worker.stack.embedded_redis import EmbeddedRedis, answers, free_port, loopback_port


@pytest.mark.parametrize(("url", "port"), [
    ("redis://127.0.0.1:6379/0", 6379), ("redis://localhost/1", 6379), ("redis://127.0.0.1:7001", 7001),
    ("redis://:secret@127.0.0.1:6379/0", None), ("redis://cache.internal:6379/0", None),
    ("rediss://127.0.0.1:6379/0", None), ("unix:///tmp/redis.sock", None), ("redis://127.0.0.1:port", None),
])
def test_loopback_port(url: str, port: int | None) -> None:
    assert loopback_port(url) == port


def test_starts_on_the_preferred_port_and_stops(tmp_path: Path) -> None:
    wanted = free_port()
    server = EmbeddedRedis(tmp_path)
    url = server.start(wanted)
    pid = server.pid
    try:
        assert url == f"redis://127.0.0.1:{wanted}/0" and answers(url)
    finally:
        server.stop()
    assert pid is not None and not psutil.pid_exists(pid) and not answers(url)


def test_a_taken_preferred_port_means_another_one(tmp_path: Path) -> None:
    first, second = EmbeddedRedis(tmp_path), EmbeddedRedis(tmp_path)
    taken = first.start()
    try:
        port = int(taken.rsplit(":", 1)[1].split("/")[0])
        other = second.start(port)
        assert other != taken and answers(other)
    finally:
        second.stop()
        first.stop()
