"""Runs that do not send: skips with their reasons, below threshold, deleted automation, duplicates;
a run resumed after its worker died; chains (including a cycle)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import keys
from models.automation import PAUSED
from models.run import Run
from tasks.run import execute
from tests.support.factories import make_partner_function
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import T0, definitions, fresh, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]


@pytest.mark.parametrize(("change", "reason"), [
    ("paused", "automation is paused: holiday"),
    ("disabled", "connection is disabled"),
    ("suspended", "connection is suspended: audit"),
    ("reconnect", "connection needs reconnection (its refresh token was refused)"),
    ("pf_disabled", "partner function is disabled"),
    ("pf_missing", "partner function is missing (perform_action names none)"),
])
def test_skipped_with_its_reason(db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
                                 change: str, reason: str) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    conn, pf = auto.connection, auto.partner_function
    assert pf is not None
    if change == "paused":
        auto.status, auto.status_comment = PAUSED, "holiday"
    elif change == "disabled":
        conn.status = "INACTIVE"
    elif change == "suspended":
        conn.suspended, conn.suspension_comment = True, "audit"
    elif change == "reconnect":
        conn.needs_reconnect = True
    elif change == "pf_disabled":
        pf.enabled = False
    else:
        auto.partner_function_id = None
    db.commit()
    summary = execute(auto.uuid, slot().isoformat())
    assert (summary["status"], summary["reason"]) == ("skipped", reason)
    assert server.invocations() == [] and server.state.fetches == []
    assert run_of(db, auto).finished_at is not None


def test_overlapping_run_is_skipped(db: Session, server: IntegrationServer, fast: None,
                                   rclient: redis.Redis) -> None:
    auto = definitions(db, server)
    rclient.set(keys.run_lock(auto.uuid), f"{slot(-5).isoformat()}|other-worker", ex=60)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "skipped"
    assert summary["reason"] == "another run of this automation is still going"
    assert rclient.get(keys.run_lock(auto.uuid)) == f"{slot(-5).isoformat()}|other-worker"  # not released


def test_below_threshold_invokes_nothing_and_keeps_the_watermark(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    auto = definitions(db, server, ignore_threshold=3)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "below_threshold" and summary["records_matched"] == 2
    assert server.invocations() == [] and fresh(db, auto).watermark_at == T0 - timedelta(days=1)


def test_deleted_automation_returns_a_summary(db: Session, fast: None, rclient: redis.Redis) -> None:
    summary = execute("00000000-0000-0000-0000-000000000000", slot().isoformat())
    assert summary["status"] == "deleted" and summary["run_uuid"] is None


def test_a_second_delivery_of_a_finished_slot_does_nothing(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    first = execute(auto.uuid, slot().isoformat())
    again = execute(auto.uuid, slot().isoformat(), redelivered=True)
    assert again == first and len(server.invocations()) == 1
    assert db.scalar(select(Run.id).where(Run.automation_id == auto.id).limit(2).offset(1)) is None


def test_a_delivery_while_the_same_slot_runs_elsewhere_does_nothing(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    auto = definitions(db, server)
    rclient.set(keys.run_lock(auto.uuid), f"{slot().isoformat()}|live-worker", ex=60)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "queued" and "in progress" in summary["note"]
    assert server.state.fetches == []


def test_a_redelivered_run_whose_worker_died_resumes_at_the_first_unsent_batch(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(5)])  # batches of 2: 3 batches
    auto = definitions(db, server)
    server.fail_next("invoke", 4, kind="status", status=500, skip=1)  # batch 1 fails: run deferred...
    execute(auto.uuid, slot().isoformat())
    run = run_of(db, auto)
    assert run.status == "deferred" and run.batches_sent == 1
    # ... then pretend it had died instead: still running, its lock left behind, one batch acknowledged.
    run.status, run.finished_at = "running", None
    db.commit()
    rclient.set(keys.run_lock(auto.uuid), f"{slot().isoformat()}|dead-worker", px=400)
    server.set_records("supplier", [record(f"r{i}", i) for i in range(5)] + [record("late", 3)])
    busy = execute(auto.uuid, slot().isoformat(), redelivered=True)
    assert busy["status"] == "running" and 0 < busy["busy_for_s"] <= 0.4  # nothing takes over a held lock
    time.sleep(0.5)  # the dead holder's lock expires
    summary = execute(auto.uuid, slot().isoformat(), redelivered=True)
    assert summary["status"] == "succeeded" and summary["records_sent"] == 5, summary
    assert [inv.key.split(":")[1] for inv in server.invocations()] == ["0", "1", "2"]
    assert [r["id"] for r in server.sent_records()] == [f"r{i}" for i in range(5)]  # "late" waits
    assert fresh(db, auto).watermark_at == T0 + timedelta(minutes=4)
    assert rclient.get(keys.run_lock(auto.uuid)) is None


def test_chain_runs_the_named_automation_and_stops_at_a_cycle(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr("tasks.chain.enqueue_run",
                        lambda uuid, at, **_: queued.append((uuid, at.isoformat())))
    server.set_records("supplier", [record("a", 1)])
    first = definitions(db, server, name="Automation one", code="one", another_automation="AUTOMATION TWO")
    second = definitions(db, server, connection=first.connection, pf=first.partner_function,
                         name="Automation two", code="two", another_automation="one")
    summary = execute(first.uuid, slot().isoformat())
    assert summary["reason"] == f"chained to automation {second.uuid} (Automation two)"
    assert queued[0][0] == second.uuid
    chained = execute(*queued[0])
    assert chained["status"] == "succeeded"
    assert chained["reason"] == "chain stopped: 'one' already ran in this chain (cycle)"
    child = run_of(db, second)
    assert (child.trigger, child.chain_depth, child.parent_run_uuid) == ("chain", 1, summary["run_uuid"])
    assert len(queued) == 1


def test_chain_to_nothing_says_so(db: Session, server: IntegrationServer, fast: None,
                                  rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server, another_automation="Automation four")
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded"
    assert summary["reason"] == (
        "another_automation 'Automation four' matches no automation of this connection")


def test_chain_depth_is_bounded(db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    queued: list[tuple[str, str]] = []
    monkeypatch.setattr("tasks.chain.enqueue_run",
                        lambda uuid, at, **_: queued.append((uuid, at.isoformat())))
    server.set_records("supplier", [record("a", 1)])
    first = definitions(db, server, code="c0", another_automation="c1")
    pf = first.partner_function or make_partner_function(db, first.connection)
    for i in range(1, 8):
        definitions(db, server, connection=first.connection, pf=pf, code=f"c{i}",
                    another_automation=f"c{i + 1}")
    execute(first.uuid, slot().isoformat())
    while queued:
        last = execute(*queued.pop())
    assert last["reason"].startswith("chain stopped: 'c6' would exceed the maximum chain depth of 5")
