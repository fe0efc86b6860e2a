"""The API as its own process: uvicorn on a free loopback port with a fresh database and Redis of its own
(the contract run and the offline /docs test talk to it over real HTTP)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models import migrate
from tests.support.processes import wait_until
from tests.support.services import fresh_database, redis_server
from worker.stack.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]


def healthy(url: str) -> bool:
    """Whether /health answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextmanager
def api_alone(tmp_path: Path, **env_extra: str) -> Iterator[tuple[str, str]]:
    """(url, redis_url) of a uvicorn serving api.main:app with `env_extra` set; stopped (by pid) after."""
    with fresh_database(tmp_path) as database_url, redis_server(tmp_path) as redis_url:
        migrate.upgrade(database_url)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "API_"))}
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT),
                   **env_extra)
        with open(tmp_path / "api.log", "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            assert wait_until(lambda: server.poll() is not None or healthy(url), 60, 0.2)
            assert server.poll() is None, (tmp_path / "api.log").read_text()
            yield url, redis_url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
