"""Flower names the automation: beat's batched publisher and trigger-now put its code in the run task's
argsrepr, and a real Flower (fed by a real worker's events) finds the runs by it through its search.
A headless Chromium screenshot of Flower's tasks list is saved when Chromium is installed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.main import app
from models import keys
from models.db import get_engine
from tests.api.conftest import AUTH
from tests.support import processes
from tests.support.beat_support import due_automation
from tests.support.factories import make_partner_function
from worker.beat.dispatch import Dispatcher
from worker.beat.publish import PipelinePublisher
from worker.celery_app import app as celery_app

CODE = "nightly-supplier-sync"
#: Flower's tasks list with the arguments shown (as `make run` starts it: worker/stack/run.py)
TASKS_COLUMNS = "name,uuid,state,args,received,runtime,worker"
#: Where the screenshot of Flower's tasks list goes (kept after the test, for a human to look at).
SCREENSHOT = Path(os.environ.get("FLOWER_SCREENSHOT", "var/flower-tasks.png"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture()
def flower(db: Session, redis_url: str) -> Iterator[str]:
    """A real worker (-E) and a real Flower on loopback; both stopped by pid afterwards."""
    rc = redis.Redis.from_url(redis_url)
    rc.delete(keys.RUN_QUEUE)
    port = _free_port()
    env = processes.celery_env(FLOWER_UNAUTHENTICATED_API="true")
    worker = processes.start_worker(env, "flower-worker", 1, pool="solo")
    flower_proc = processes._start(["-A", "worker", "flower", f"--port={port}", "--address=127.0.0.1",
                                    f"--tasks_columns={TASKS_COLUMNS}"], env, "flower", None)
    url = f"http://127.0.0.1:{port}"
    try:
        assert processes.wait_until(lambda: _up(url), 60, 0.5), processes.log_of(flower_proc)[-3000:]
        yield url
    finally:
        processes.stop(flower_proc)
        processes.stop(worker)
        rc.delete(keys.RUN_QUEUE)
        rc.close()


def _up(url: str) -> bool:
    try:
        _get(f"{url}/api/workers?refresh=0")
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_flower_finds_runs_by_the_automations_code(db: Session, flower: str) -> None:
    auto = due_automation(db, datetime.now(UTC).replace(microsecond=0), check_on="1 hour")
    auto.code = CODE
    make_partner_function(db, auto.connection)
    db.commit()
    # beat's batched publisher (the pipeline path), then trigger-now through the API
    result = Dispatcher(get_engine(), PipelinePublisher(celery_app, redis.Redis.from_url(
        celery_app.conf.broker_url)), 10, 3600).dispatch_batch(datetime.now(UTC))
    assert result.dispatched == 1
    with TestClient(app, headers=AUTH) as client:
        triggered = client.post(f"/api/v3/integration/{auto.connection.uuid}/automation/{auto.uuid}/run")
        assert triggered.status_code in (200, 201, 202), triggered.text

    def found() -> list[dict[str, Any]]:
        return list(_get(f"{flower}/api/tasks?search={CODE}").values())

    assert processes.wait_until(lambda: len(found()) >= 2, 60, 0.5), found()
    tasks = found()
    assert {t["name"] for t in tasks} == {"automations.run"}
    for task in tasks:
        assert CODE in task["args"] and auto.uuid in task["args"], task["args"]
    assert _get(f"{flower}/api/tasks?search=no-such-automation-code") == {}
    _screenshot(flower)


def _screenshot(url: str) -> None:
    """Flower's tasks list in headless Chromium (skipped where Chromium is not installed)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,900",
                    "--virtual-time-budget=8000", f"--screenshot={SCREENSHOT.resolve()}",
                    f"{url}/tasks?search={CODE}"], check=False, timeout=90, capture_output=True,
                   stdin=subprocess.DEVNULL, env={**os.environ, "HOME": str(SCREENSHOT.parent.resolve())})
    assert SCREENSHOT.exists() and SCREENSHOT.stat().st_size > 10_000, "no screenshot of Flower's tasks list"
    print(f"Flower tasks list screenshot: {SCREENSHOT.resolve()}", file=sys.stderr)
