"""The run task through real Celery: an in-process worker on the real Redis broker, real worker and beat
subprocesses for the scheduled run and for a worker killed with SIGKILL mid-run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import keys
from models.base import utcnow
from models.run import Run
from tasks.enqueue import enqueue_run
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record, run_of, slot
from worker.celery_app import app

pytest_plugins = ["tests.support.run_support"]


@pytest.fixture()
def broker(redis_url: str, database_url: str, rclient: redis.Redis) -> None:
    """The app publishes to this session's Redis (it was configured at import, maybe before the env)."""
    if app.conf.broker_url != redis_url:
        app.conf.update(broker_url=redis_url, result_backend=redis_url)
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None
    rclient.delete(keys.RUN_QUEUE)


@pytest.fixture()
def celery_worker(broker: None) -> Iterator[None]:
    """An in-process worker (threads pool) consuming the run queue of this session's Redis."""
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10):
        yield


@pytest.fixture()
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Subprocesses started by a test, stopped afterwards whatever happens."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        processes.stop(proc)


def test_a_run_through_a_celery_worker_returns_its_summary(
        db: Session, server: IntegrationServer, fast: None, celery_worker: None) -> None:
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    auto = definitions(db, server)
    task_id = enqueue_run(auto.uuid, slot())
    summary = app.AsyncResult(task_id).get(timeout=20)
    assert summary["status"] == "succeeded" and summary["records_sent"] == 2
    assert summary["run_uuid"] == run_of(db, auto).uuid
    assert "token" not in str(summary).lower()


def test_duplicate_messages_for_one_slot_run_once(
        db: Session, server: IntegrationServer, fast: None, celery_worker: None) -> None:
    server.set_records("supplier", [record("a", 1)])
    server.state.invoke_delay_s = 0.3
    auto = definitions(db, server)
    ids = [enqueue_run(auto.uuid, slot()) for _ in range(3)]
    results = [app.AsyncResult(i).get(timeout=20) for i in ids]
    assert sorted(r["status"] for r in results).count("succeeded") >= 1
    assert len(server.invocations()) == 1
    assert db.scalar(select(func.count()).select_from(Run).where(Run.automation_id == auto.id)) == 1


@pytest.mark.slow
def test_a_scheduled_automation_runs_on_its_own(db: Session, server: IntegrationServer, rclient: redis.Redis,
                                                started: list, tmp_path: Path) -> None:
    server.set_records("supplier", [record("a", 1, Name="Acme")])
    # An hourly schedule, with the next hour far from `due`: a beat that starts slowly on a loaded machine
    # (after the slot following `due` has passed too) would otherwise make it a catch-up run.
    due = utcnow().replace(microsecond=0) + timedelta(seconds=2)
    next_hour = due.replace(minute=0, second=0) + timedelta(hours=1)
    if next_hour - due < timedelta(minutes=2):
        due = next_hour + timedelta(seconds=2)
        time.sleep(max(0.0, (due - utcnow()).total_seconds() - 2))
    auto = definitions(db, server, check_on="1 hour", next_run_at=due)
    rclient.delete(keys.RUN_QUEUE)
    env = processes.celery_env()
    started.append(processes.start_worker(env, "run-worker", 2, tmp_path))
    started.append(processes.start_beat(env, "run-beat", tmp_path))
    logs = lambda: "".join(processes.log_of(p) for p in started)  # noqa: E731
    assert processes.wait_until(lambda: server.sent_records(), 30), logs()
    assert processes.wait_until(lambda: run_of(db, auto).status == "succeeded", 10), logs()
    run = run_of(db, auto)
    assert (run.trigger, run.scheduled_for, run.records_sent) == ("schedule", due, 1)


@pytest.mark.slow
def test_a_worker_killed_mid_run_finishes_the_run_exactly_once_after_redelivery(
        db: Session, server: IntegrationServer, broker: None, started: list, tmp_path: Path) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(3)])
    server.state.invoke_delay_s = 3.0
    auto = definitions(db, server)
    env = processes.celery_env(VISIBILITY_TIMEOUT_S="10", RUN_LOCK_TTL_S="5", INVOKE_BATCH_SIZE="2")
    doomed = processes.start_worker(env, "doomed", 1, tmp_path, pool="threads")
    started.append(doomed)
    the_slot = slot()
    enqueue_run(auto.uuid, the_slot)
    assert processes.wait_until(lambda: server.state.invokes_started >= 1, 20), processes.log_of(doomed)
    processes.kill(doomed)  # SIGKILL while batch 0 is in flight: no ack, the run lock left behind
    server.state.invoke_delay_s = 0.0
    survivor = processes.start_worker(env, "survivor", 1, tmp_path, pool="threads")
    started.append(survivor)
    done = processes.wait_until(lambda: run_of(db, auto, the_slot).status == "succeeded", 45)
    assert done, processes.log_of(survivor)
    run = run_of(db, auto, the_slot)
    assert run.attempts == 2 and run.records_sent == 3  # resumed once the dead holder's lock expired
    keys_sent = [inv.key for inv in server.invocations()]
    assert sorted(set(keys_sent)) == [f"{run.uuid}:0", f"{run.uuid}:1"]
    assert [r["id"] for r in server.sent_records()] == ["r0", "r1", "r2"]  # each applied once
    assert db.scalar(select(func.count()).select_from(Run).where(Run.automation_id == auto.id)) == 1
