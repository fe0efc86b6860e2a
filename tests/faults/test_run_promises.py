"""The run's promises end to end (issue 11): real worker processes, real SIGKILLs, kombu's own redelivery.

After each fault the partner has applied every record version exactly once, checked by content across
Idempotency-Keys, and no watermark ever moved backwards (sampled every 50 ms throughout).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import PAUSED
from models.db import get_engine
from models.run import Run
from tasks.enqueue import enqueue_run
from tests.faults.support import (
    WatermarkWatch,
    applied_versions,
    fault_env,
    kill_group,
    log_dir,
    logs,
    wait_for,
)
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, fresh, record, run_of, slot

RECORDS = [record(f"r{i}", i) for i in range(5)]  # 3 batches of the suite's INVOKE_BATCH_SIZE=2
EXPECTED = Counter((str(r["id"]), str(r["updated_at"])) for r in RECORDS)


def _status(db: Session, auto: Any, the_slot: Any) -> str | None:
    """The slot's run status as stored now, None while it has no row."""
    db.expire_all()
    run = db.scalar(select(Run).where(Run.automation_id == auto.id, Run.scheduled_for == the_slot))
    return run.status if run is not None else None


def _unacked(queues: redis.Redis) -> int:
    """Messages delivered and not acknowledged (kombu's Redis transport keeps them in a hash)."""
    return int(queues.hlen("unacked"))


def _kill_mid_run(server: IntegrationServer, env: dict[str, str], logs_at: Path, name: str,
                  started: list[Any]) -> None:
    """A worker whose run has batch 0 acknowledged and batch 1 in flight is SIGKILLed, whole group."""
    worker = processes.start_worker(env, name, 1, logs_at)
    started.append(worker)
    wait_for(lambda: server.state.invokes_started >= 2, 60,
             lambda: f"batch 1 never started\n{logs([worker])}")
    kill_group(worker)


def test_a_whole_worker_killed_mid_run_while_the_next_slot_comes_due(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    """Finding 1: the next slot, dispatched after the dead worker's lock expired and before kombu
    redelivers, completes the dead run's plan (its keys) first; the late redelivery changes nothing."""
    server.set_records("supplier", RECORDS)
    server.state.invoke_delay_s = 1.0
    auto = definitions(db, server)
    env, logs_at = fault_env(VISIBILITY_TIMEOUT_S="20"), log_dir(tmp_path)
    first, second = slot(1), slot(2)
    with WatermarkWatch(get_engine(), [auto.id]) as watch:
        enqueue_run(auto.uuid, first)
        _kill_mid_run(server, env, logs_at, "doomed", started)
        server.state.invoke_delay_s = 0.0
        time.sleep(3.5)  # RUN_LOCK_TTL_S=3: the dead holder's lock is gone, its message still unacked
        survivor = processes.start_worker(env, "survivor", 2, logs_at)
        started.append(survivor)
        enqueue_run(auto.uuid, second)
        wait_for(lambda: _status(db, auto, second) in ("succeeded", "below_threshold"), 60,
                 lambda: logs([survivor]))
        assert run_of(db, auto, first).status == "succeeded"
        wait_for(lambda: _unacked(queues) == 0 and "redelivered" in processes.log_of(survivor), 60,
                 lambda: f"no redelivery of the killed run's message\n{logs([survivor])}")
        wait_for(lambda: _unacked(queues) == 0, 30, lambda: logs([survivor]))
    dead = run_of(db, auto, first)
    assert {inv.key.split(":")[0] for inv in server.invocations()} == {dead.uuid}  # the dead run's keys only
    assert applied_versions(server) == EXPECTED
    assert watch.backwards() == []
    assert fresh(db, auto).watermark_at is not None


def test_a_live_worker_waiting_longer_than_the_visibility_timeout_is_not_overtaken(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    """Finding 3: a Retry-After longer than the visibility timeout (10 s) is waited out by a live worker
    whose heartbeat keeps its lock; kombu's redelivery of its message answers BUSY and checks back."""
    server.set_records("supplier", RECORDS)
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="14", skip=1)
    auto = definitions(db, server)
    # BUDGET_MAX_WAIT_S above the Retry-After: the worker waits it out alive (a shorter limit defers the
    # run instead, tests/faults/test_partner_limits.py), past the 10 s visibility timeout
    env, logs_at = fault_env(BUDGET_MAX_WAIT_S="30"), log_dir(tmp_path)
    workers = [processes.start_worker(env, f"w{i}", 2, logs_at, pool="threads") for i in range(2)]
    started.extend(workers)
    the_slot = slot()
    with WatermarkWatch(get_engine(), [auto.id]) as watch:
        enqueue_run(auto.uuid, the_slot)
        wait_for(lambda: _status(db, auto, the_slot) == "succeeded", 60, lambda: logs(workers))
        wait_for(lambda: _unacked(queues) == 0, 40, lambda: logs(workers))
    text = "".join(processes.log_of(w) for w in workers)
    assert "(redelivered)" in text and "retry: Retry in" in text, logs(workers)  # BUSY, checked back
    run = run_of(db, auto, the_slot)
    assert {inv.key.split(":")[0] for inv in server.invocations()} == {run.uuid}
    assert applied_versions(server) == EXPECTED
    assert watch.backwards() == []


def test_a_paused_automation_between_a_crash_and_the_redelivery_completes_its_plan(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    """Finding 5: a half-sent run is completed as planned although its automation was paused after the
    crash; the pause applies to the next run, which sends nothing."""
    server.set_records("supplier", RECORDS)
    server.state.invoke_delay_s = 1.0
    auto = definitions(db, server)
    env, logs_at = fault_env(), log_dir(tmp_path)
    the_slot = slot()
    with WatermarkWatch(get_engine(), [auto.id]) as watch:
        enqueue_run(auto.uuid, the_slot)
        _kill_mid_run(server, env, logs_at, "doomed", started)
        server.state.invoke_delay_s = 0.0
        paused = fresh(db, auto)
        paused.status, paused.status_comment = PAUSED, "maintenance"
        db.commit()
        survivor = processes.start_worker(env, "survivor", 2, logs_at)
        started.append(survivor)
        wait_for(lambda: _status(db, auto, the_slot) == "succeeded", 60,
                 lambda: f"{_status(db, auto, the_slot)}\n{logs([survivor])}")
        enqueue_run(auto.uuid, slot(7))
        wait_for(lambda: _status(db, auto, slot(7)) == "skipped", 30, lambda: logs([survivor]))
    assert "paused" in (run_of(db, auto, slot(7)).reason or "")
    assert applied_versions(server) == EXPECTED
    assert watch.backwards() == []
