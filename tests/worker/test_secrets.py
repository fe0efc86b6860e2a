"""The API, the worker and beat refuse to start without their secrets: a clear message, a non-zero exit.

Each is started as a user would start it (`uvicorn api.main:app`, `celery -A worker worker`, `celery -A
worker beat`) with no API_TOKEN, or with the development (or an empty) SECRET_KEY. `make run` still starts
with neither set: tests/stack/test_stack.py runs it with both unset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.settings import DEV_SECRET_KEY
from tests.support.processes import ROOT, celery_env
from worker.stack.embedded_redis import free_port
from worker.startup import EX_CONFIG

UVICORN_STARTUP_FAILED = 3
# Every message is tested in process too (tests/api/test_auth_and_errors.py); a process each costs ~3 s.
NO_TOKEN = pytest.param({"API_TOKEN": None}, "API_TOKEN is not set", id="no-api-token")
NO_KEY = pytest.param({"SECRET_KEY": None}, "SECRET_KEY is the development default", id="no-secret-key")
DEV_KEY = pytest.param({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY is the development default",
                       id="dev-secret-key")
NEITHER = pytest.param({"API_TOKEN": " , ", "SECRET_KEY": ""}, "API_TOKEN is not set (", id="neither")


def environment(changes: dict[str, str | None]) -> dict[str, str]:
    """This session's database and Redis, with the secrets changed (None: unset)."""
    env = celery_env(LOG_LEVEL="INFO")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a service's command until it exits by itself (bounded)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize(("changes", "message"), [NO_TOKEN, DEV_KEY, NEITHER])
def test_the_api_refuses_to_start(database_url: str, changes: dict[str, str | None], message: str) -> None:
    result = run(["uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(free_port())],
                 environment(changes))
    output = result.stdout + result.stderr
    assert result.returncode == UVICORN_STARTUP_FAILED, output
    assert f"the API refuses to start: {message}" in output and "make run" in output
    assert "Application startup failed" in output
    if "SECRET_KEY" in changes and "API_TOKEN" in changes:
        assert "; SECRET_KEY is empty" in output  # both problems named at once


@pytest.mark.parametrize(("changes", "message"), [NO_TOKEN, NO_KEY])
def test_the_worker_refuses_to_start(database_url: str, changes: dict[str, str | None], message: str) -> None:
    result = run(["celery", "-A", "worker", "worker", "-l", "INFO", "--without-gossip", "--without-mingle"],
                 environment(changes))
    assert result.returncode == EX_CONFIG, result.stdout + result.stderr
    assert f"error: the worker refuses to start: {message}" in result.stderr
    assert "celery@" not in result.stdout  # no banner: it never started


@pytest.mark.parametrize(("changes", "message"), [NO_TOKEN, DEV_KEY])
def test_beat_refuses_to_start(database_url: str, tmp_path: Path, changes: dict[str, str | None],
                               message: str) -> None:
    result = run(["celery", "-A", "worker", "beat", "-l", "INFO", "-s", str(tmp_path / "schedule")],
                 environment(changes))
    assert result.returncode == EX_CONFIG, result.stdout + result.stderr
    assert f"error: beat refuses to start: {message}" in result.stderr
    assert "Scheduler: Sending due task" not in result.stdout + result.stderr
