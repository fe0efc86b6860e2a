"""A run's Celery state is its outcome, read back through a real Flower: a run recorded `failed` is FAILURE
with its reason as the error and is acked, never redelivered; a skipped run is SUCCESS with its status."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from models.automation import PAUSED
from tasks.enqueue import enqueue_run
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record, run_of, slot
from worker.stack.embedded_redis import free_port

pytest_plugins = ["tests.support.run_support"]
VISIBILITY_TIMEOUT_S = 3  # an unacked message would be restored within this plus a 1 s sweep
REASON = "connection needs reconnection: the refresh token was refused (invalid_grant)"


def flower_json(url: str) -> Any:
    """A JSON answer of Flower's API, None while it has none."""
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.HTTPError):
        return None


@pytest.fixture()
def worker_and_flower(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """Flower (events from the start) and one worker with task events; Flower's base URL."""
    env = processes.celery_env(VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S), RETRY_BASE_S="0.01",
                               RETRY_CAP_S="0.05", FLOWER_UNAUTHENTICATED_API="true")
    port = free_port()
    flower = processes._start(["-A", "worker", "flower", f"--port={port}", "--address=127.0.0.1"], env,
                              "flower-state", tmp_path)
    started: list[subprocess.Popen[bytes]] = [flower]
    url = f"http://127.0.0.1:{port}"
    try:
        assert processes.wait_until(lambda: flower_json(f"{url}/api/workers") is not None, 30, 0.3), \
            processes.log_of(flower)
        worker = processes.start_worker(env, "w-state", log_dir=tmp_path, pool="threads")
        started.append(worker)
        assert processes.wait_for_log(worker, "ready", 30), processes.log_of(worker)
        yield url
        assert "Traceback" not in processes.log_of(worker), processes.log_of(worker)[-3000:]
    finally:
        for proc in reversed(started):
            processes.stop(proc)


def task_info(flower: str, task_id: str, state: str) -> dict[str, Any] | None:
    """Flower's record of the task once it is in `state`."""
    info = flower_json(f"{flower}/api/task/info/{task_id}")
    return info if info and info.get("state") == state else None


def test_failed_run_is_failure_in_flower_and_not_redelivered(
        db: Session, server: IntegrationServer, rclient: redis.Redis, worker_and_flower: str) -> None:
    server.set_records("supplier", [record("a", 1)])
    server.require_tokens({"tokens-the-partner-issued-since"}, "a-refresh-token-it-issued-since")
    failing = definitions(db, server)
    paused = definitions(db, server, connection=failing.connection, pf=failing.partner_function,
                         status=PAUSED)
    failed_id = enqueue_run(failing.uuid, slot())
    skipped_id = enqueue_run(paused.uuid, slot(1))

    flower = worker_and_flower
    assert processes.wait_until(lambda: task_info(flower, failed_id, "FAILURE"), 30, 0.3)
    info = task_info(flower, failed_id, "FAILURE")
    assert info is not None and REASON in info["exception"] and "RunFailed" in info["exception"], info
    assert run_of(db, failing).status == "failed" and run_of(db, failing).reason == REASON
    listed = flower_json(f"{flower}/api/tasks?state=FAILURE") or {}
    assert failed_id in listed

    assert processes.wait_until(lambda: task_info(flower, skipped_id, "SUCCESS"), 30, 0.3)
    done = task_info(flower, skipped_id, "SUCCESS")
    assert done is not None and "'status': 'skipped'" in done["result"], done

    # Acked once recorded: nothing is left unacknowledged, and after the visibility timeout and the
    # restore sweep the failed task has run once (one refresh attempt, one attempt on the run).
    time.sleep(VISIBILITY_TIMEOUT_S + 3)
    assert rclient.hlen("unacked") == 0
    again = task_info(flower, failed_id, "FAILURE")
    assert again is not None and again["received"] == info["received"], again
    assert server.state.refreshes == 1 and run_of(db, failing).attempts == 1
