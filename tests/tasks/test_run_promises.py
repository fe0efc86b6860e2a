"""Regression tests of the run's promises under faults (issue 11, findings 1, 2, 3, 5 and 7): every
record version applied once, under one Idempotency-Key, whatever delivery dies or waits.

Each test reproduces the review's finding with the run code, a real Redis and the loopback partner; the
long timeouts of production are scaled down with their ratio kept (a run lock of a fraction of a second
against waits longer than it).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy.orm import Session

from models import keys
from models.automation import PAUSED
from models.base import utcnow
from models.settings import get_settings
from tasks import run_record as claim
from tasks.locks import Heartbeat, Lock
from tasks.run import execute
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import T0, definitions, fresh, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]


def _applied_versions(server: IntegrationServer) -> Counter[tuple[str, str]]:
    """(id, updated_at) of every record the partner applied, over every Idempotency-Key."""
    return Counter((str(r["id"]), str(r["updated_at"])) for r in server.sent_records())


def _leave_half_sent(db: Session, server: IntegrationServer, auto: object, the_slot: datetime) -> None:
    """A run of `the_slot` whose worker died after batch 0 of 3 was acknowledged: running, plan stored."""
    server.fail_next("invoke", 4, kind="status", status=500, skip=1)
    execute(auto.uuid, the_slot.isoformat())  # type: ignore[attr-defined]
    run = run_of(db, auto, the_slot)  # type: ignore[arg-type]
    assert run.batches_sent == 1 and run.plan is not None
    run.status = "running"  # as a SIGKILL leaves it
    db.commit()


def test_finding_1_the_next_slot_completes_a_dead_runs_plan_first_and_the_watermark_never_goes_back(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    records = [record(f"r{i}", i) for i in range(5)]  # batches of 2: 3 batches
    server.set_records("supplier", records)
    auto = definitions(db, server)
    first, second = slot(1), slot(2)
    _leave_half_sent(db, server, auto, first)
    dead = run_of(db, auto, first)
    # The dead worker's lock has expired; the next slot comes due before any redelivery.
    assert execute(auto.uuid, second.isoformat())["status"] in ("below_threshold", "succeeded")
    assert run_of(db, auto, first).status == "succeeded"
    assert {inv.key.split(":")[0] for inv in server.invocations()} == {dead.uuid}  # no new keys
    assert _applied_versions(server) == Counter((str(r["id"]), r["updated_at"]) for r in records)
    mark = fresh(db, auto)
    at, version = mark.watermark_at, mark.watermark_version
    assert at == T0 + timedelta(minutes=4)
    # The redelivery of the dead run comes at last: it finds its run finished and moves nothing.
    summary = execute(auto.uuid, first.isoformat(), redelivered=True)
    assert summary["status"] == "succeeded"
    mark = fresh(db, auto)
    assert (mark.watermark_at, mark.watermark_version) == (at, version)
    assert sum(_applied_versions(server).values()) == len(records)


def test_finding_2_a_live_holders_lock_is_never_taken_over_by_a_redelivery(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    the_slot = slot()
    lock = Lock(keys.run_lock(auto.uuid), 0.3)
    token = f"{the_slot.isoformat()}|live-task|x"
    assert lock.acquire(token)
    with Heartbeat(lock, token):  # alive, however long it waits: the lock outlives its TTL
        time.sleep(0.6)
        summary = execute(auto.uuid, the_slot.isoformat(), redelivered=True, task_id="live-task")
        assert "in progress" in summary["note"] and summary["busy_for_s"] > 0
        assert rclient.get(keys.run_lock(auto.uuid)) == token
    assert server.state.fetches == [] and server.invocations() == []


def test_finding_2_a_stored_plan_is_never_replaced_and_a_finished_run_moves_no_watermark(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    auto = definitions(db, server)
    the_slot = slot()
    _leave_half_sent_two(db, server, auto, the_slot)
    stored = run_of(db, auto, the_slot).plan
    found = claim.look_up(auto.uuid, the_slot)
    pending = claim.Claim(auto.id, the_slot, found.run)
    pending.state = found.run
    with pytest.raises(claim.PlanConflict):
        pending.claim({"batches": [["zz"]], "fetched": 1, "matched": 1, "watermark_at": None})
    assert run_of(db, auto, the_slot).plan == stored
    # A run finished elsewhere: a late finish with a watermark changes neither the run nor the watermark.
    execute(auto.uuid, the_slot.isoformat())
    before = fresh(db, auto)
    at, version = before.watermark_at, before.watermark_version
    from tasks.selection import Watermark

    late = claim.Claim(auto.id, the_slot, found.run)
    late.state = found.run
    state = late.finish("failed", reason="late", watermark=Watermark(T0, frozenset(), {}, 0))
    assert state.status == "succeeded"
    after = fresh(db, auto)
    assert (after.watermark_at, after.watermark_version) == (at, version)


def _leave_half_sent_two(db: Session, server: IntegrationServer, auto: object, the_slot: datetime) -> None:
    """A run with a stored plan of one batch that failed: deferred, as a dead worker would leave it."""
    server.fail_next("invoke", 4, kind="status", status=500)
    execute(auto.uuid, the_slot.isoformat())  # type: ignore[attr-defined]
    run = run_of(db, auto, the_slot)  # type: ignore[arg-type]
    assert run.status == "deferred" and run.plan is not None


def test_finding_2_a_delivery_stops_sending_the_moment_its_lock_is_lost(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(5)])  # 3 batches
    server.state.invoke_delay_s = 0.3
    auto = definitions(db, server)
    the_slot = slot()

    def take_over() -> None:  # another delivery takes the lock while batch 0 is in flight
        deadline = time.monotonic() + 10
        while server.state.invokes_started < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        rclient.set(keys.run_lock(auto.uuid), f"{the_slot.isoformat()}|other|y", px=5000)

    thief = threading.Thread(target=take_over)
    thief.start()
    summary = execute(auto.uuid, the_slot.isoformat())
    thief.join()
    assert "lock lost" in summary["note"], summary
    assert [inv.key.split(":")[1] for inv in server.invocations()] == ["0"]  # nothing after the loss
    assert run_of(db, auto, the_slot).status == "running"  # left to the holder, unfinished


def test_finding_3_a_run_waiting_longer_than_its_lock_ttl_keeps_it_and_is_not_overtaken(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "run_lock_ttl_s", 0.3)
    server.set_records("supplier", [record("a", 1)])
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="1.2")  # 4 lock TTLs
    auto = definitions(db, server)
    the_slot = slot()
    results: dict[str, dict[str, object]] = {}
    waiter = threading.Thread(target=lambda: results.update(first=execute(auto.uuid, the_slot.isoformat())))
    waiter.start()
    time.sleep(0.8)  # the first delivery sleeps on Retry-After, well past its lock's TTL
    second = execute(auto.uuid, the_slot.isoformat(), redelivered=True)
    next_slot = execute(auto.uuid, slot(5).isoformat())
    waiter.join(timeout=10)
    assert results["first"]["status"] == "succeeded"
    assert "in progress" in second["note"]
    assert next_slot["status"] == "skipped" and "still going" in str(next_slot["reason"])
    assert _applied_versions(server) == Counter({("a", record("a", 1)["updated_at"]): 1})


@pytest.mark.parametrize("change", ["paused", "threshold"])
def test_finding_5_a_half_sent_run_is_completed_as_planned_after_a_pause_or_a_new_threshold(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis, change: str) -> None:
    records = [record(f"r{i}", i) for i in range(5)]
    server.set_records("supplier", records)
    auto = definitions(db, server)
    the_slot = slot()
    _leave_half_sent(db, server, auto, the_slot)
    stored = fresh(db, auto)
    if change == "paused":
        stored.status, stored.status_comment = PAUSED, "holiday"
    else:
        stored.ignore_threshold = 100
    db.commit()
    summary = execute(auto.uuid, the_slot.isoformat(), redelivered=True)
    assert summary["status"] == "succeeded" and summary["records_sent"] == 5, summary
    assert _applied_versions(server) == Counter((str(r["id"]), r["updated_at"]) for r in records)
    # and the next run, paused or above its new threshold, sends none of them again
    execute(auto.uuid, slot(3).isoformat())
    assert sum(_applied_versions(server).values()) == 5


def test_finding_7_a_record_dated_2099_does_not_hide_the_records_after_it(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    future = {"id": "future", "created_at": "2099-01-01T00:00:00+00:00",
              "updated_at": "2099-01-01T00:00:00+00:00"}
    server.set_records("supplier", [record("a", 1), future])
    auto = definitions(db, server)
    assert execute(auto.uuid, slot(1).isoformat())["status"] == "succeeded"
    mark = fresh(db, auto).watermark_at
    assert mark is not None and mark <= utcnow()
    now = datetime.now(UTC)  # updated after the first run began
    later = {"id": "b", "created_at": now.isoformat(), "updated_at": now.isoformat()}
    server.set_records("supplier", [record("a", 1), future, later])
    assert execute(auto.uuid, slot(2).isoformat())["status"] == "succeeded"
    applied = _applied_versions(server)
    assert applied[("b", later["updated_at"])] == 1  # the real record after it is sent
    assert applied[("future", future["updated_at"])] == 1  # and the future one only once
    assert applied[("a", record("a", 1)["updated_at"])] == 1


def test_a_slot_after_a_run_that_stays_deferred_plans_nothing_and_sends_nothing_under_new_keys(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    records = [record(f"r{i}", i) for i in range(5)]
    server.set_records("supplier", records)
    auto = definitions(db, server)
    _leave_half_sent(db, server, auto, slot(1))  # deferred run: batch 0 of 3 acknowledged
    first = run_of(db, auto, slot(1))
    server.fail_next("invoke", 4, kind="status", status=503)  # the partner is still down
    summary = execute(auto.uuid, slot(2).isoformat())
    assert summary["status"] == "skipped" and "it goes first" in summary["reason"], summary
    assert run_of(db, auto, slot(1)).status == "deferred"
    assert {inv.key.split(":")[0] for inv in server.invocations()} == {first.uuid}
    assert execute(auto.uuid, slot(3).isoformat())["status"] in ("succeeded", "below_threshold")
    assert run_of(db, auto, slot(1)).status == "succeeded"
    assert _applied_versions(server) == Counter((str(r["id"]), r["updated_at"]) for r in records)


class _HugeNumbers:
    """The loopback server's json module, writing the placeholder "<huge>" as a bare 5,000-digit number."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(body: object) -> str:
        return json.dumps(body).replace('"<huge>"', "9" * 5000)


def test_finding_6_a_record_with_a_number_of_5000_digits_does_not_stop_the_automation(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5,000-digit JSON number in one record: the run succeeds, the rule compares it as a number."""
    monkeypatch.setattr("tests.support.integration_server.json", _HugeNumbers)
    criteria = [{"group_condition": "AND", "rules": [
        {"field_name": "Amount", "operator": "GREATER_THAN", "value": "100", "condition": "AND"}]}]
    auto = definitions(db, server, additional_criteria=True, criteria=criteria)
    server.set_records("supplier", [record("small", 1, Amount=5), record("big", 2, Amount=500),
                                    record("poison", 3, Amount="<huge>")])
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded", summary
    assert sorted(str(r["id"]) for r in server.sent_records()) == ["big", "poison"]


def test_a_task_that_gives_up_fails_an_unplanned_run_but_defers_a_planned_one(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(5)])
    auto = definitions(db, server)
    _leave_half_sent(db, server, auto, slot(1))  # running, plan stored, batch 0 acknowledged
    claim.Claim(auto.id, slot(2), None).claim()  # running, no plan yet
    for minutes in (1, 2):
        claim.fail_unfinished(auto.uuid, slot(minutes), "the database stayed unavailable", "x")
    planned, unplanned = run_of(db, auto, slot(1)), run_of(db, auto, slot(2))
    assert planned.status == "deferred" and "resumes with its plan" in (planned.reason or "")
    assert unplanned.status == "failed" and unplanned.finished_at is not None
    assert fresh(db, auto).health_state == "failing"  # the run that was given up on shows on its automation
