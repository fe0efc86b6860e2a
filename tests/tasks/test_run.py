"""The run task end to end over HTTP (loopback integration API), real Redis and the real database.

Most tests call the task's body (`tasks.run.execute`) directly; test_run_worker.py sends it through
a real Celery worker.
"""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy.orm import Session

from tasks.run import execute
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import T0, definitions, fresh, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]

CRITERIA = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
    {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"}]}]


def test_partner_receives_exactly_the_matching_records(db: Session, server: IntegrationServer, fast: None,
                                                        rclient: redis.Redis) -> None:
    server.set_records("supplier", [
        record("a", 1, AccountNumber="1QKGUL"), record("b", 2, AccountNumber="1qkgul", ContactID=""),
        record("c", 3, AccountNumber="1QKGUL", ContactID="X"), record("d", 4, AccountNumber="OTHER"),
        record("e", 5, AccountNumber="1QKGUL"),
    ])
    auto = definitions(db, server, additional_criteria=True, criteria=CRITERIA)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded", summary
    assert [r["id"] for r in server.sent_records()] == ["a", "b", "e"]
    run = run_of(db, auto)
    assert (run.records_fetched, run.records_matched, run.records_sent, run.attempts) == (5, 3, 3, 1)
    assert run.started_at and run.finished_at and run.duration_ms is not None
    keys = [inv.key for inv in server.invocations()]
    assert keys == [f"{run.uuid}:0", f"{run.uuid}:1"]  # batches of 2
    body = server.invocations()[0].body
    assert body["run"] == {"uuid": run.uuid, "scheduled_for": run.scheduled_for.isoformat(),
                           "batch_index": 0, "batch_count": 2}
    assert body["automation"]["uuid"] == auto.uuid and body["do_not_over_write_latest_data"] is False
    assert "access_token" not in str(body) and "secret" not in str(body)
    assert fresh(db, auto).watermark_at == T0 + timedelta(minutes=5)


def test_second_run_sends_only_newer_records_and_the_watermark_is_inclusive(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    auto = definitions(db, server)
    assert execute(auto.uuid, slot(1).isoformat())["status"] == "succeeded"
    assert fresh(db, auto).watermark_ids == ["b"]
    # "c" shares b's instant (not processed yet), "d" is newer, "a" was updated: all three go; "b" does not.
    server.set_records("supplier", [record("a", 1, 7), record("b", 2), record("c", 2), record("d", 6)])
    summary = execute(auto.uuid, slot(2).isoformat())
    assert summary["status"] == "succeeded" and summary["records_sent"] == 3
    assert [r["id"] for r in server.sent_records()] == ["a", "b", "c", "d", "a"]
    assert server.state.fetches[-1]["updated_since"] == [(T0 + timedelta(minutes=2)).isoformat()]
    assert fresh(db, auto).watermark_at == T0 + timedelta(minutes=7)


def test_within_a_run_only_the_newest_version_of_a_record_is_sent(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1, 1, v=1), record("a", 1, 3, v=3), record("a", 1, 2, v=2)])
    auto = definitions(db, server)
    execute(auto.uuid, slot().isoformat())
    assert [r["v"] for r in server.sent_records()] == [3]


def test_applies_to_function_new_and_update(db: Session, server: IntegrationServer, fast: None,
                                            rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("old", -60, 5), record("new", 3)])
    new = definitions(db, server, applies_to_function="new", watermark_at=T0)
    update = definitions(db, server, connection=new.connection, pf=new.partner_function,
                         applies_to_function="update", watermark_at=T0)
    execute(new.uuid, slot().isoformat())
    assert [r["id"] for r in server.sent_records()] == ["new"]
    execute(update.uuid, slot().isoformat())
    assert [r["id"] for r in server.sent_records()] == ["new", "old"]


def test_without_since_last_look_up_every_record_is_looked_at(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", -600), record("b", 1)])
    auto = definitions(db, server, since_last_look_up=False, watermark_at=T0)
    execute(auto.uuid, slot(1).isoformat())
    execute(auto.uuid, slot(2).isoformat())
    assert [r["id"] for r in server.sent_records()] == ["a", "b", "a", "b"]
    assert all("updated_since" not in f for f in server.state.fetches)


def test_retries_reuse_the_idempotency_key_and_count_attempts(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    server.fail_next("invoke", 1, kind="status", status=500)
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="0")
    server.fail_next("objects", 1, kind="timeout", stall_s=1.0)
    auto = definitions(db, server)
    summary = execute(auto.uuid, slot().isoformat())
    # 1 + 2 retries; the 429 is waited out through the connection's budget, not counted as an attempt
    assert summary["status"] == "succeeded" and summary["attempts"] == 3
    run = run_of(db, auto)
    assert run.throttled == 1
    # The failed tries never reached _invoke's log; the one that did carries the batch's key.
    assert [inv.key for inv in server.invocations()] == [f"{run.uuid}:0"]


def test_a_run_failing_to_fetch_keeps_the_watermark_and_the_next_run_sends_the_same_records(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    auto = definitions(db, server)
    before = fresh(db, auto).watermark_at
    server.fail_next("objects", 4, kind="status", status=502)
    summary = execute(auto.uuid, slot(1).isoformat())
    assert summary["status"] == "failed" and summary["attempts"] == 4
    assert "kept failing after 4 tries" in summary["reason"] and "HTTP 502" in summary["error"]
    assert fresh(db, auto).watermark_at == before and server.sent_records() == []
    assert execute(auto.uuid, slot(2).isoformat())["status"] == "succeeded"
    assert [r["id"] for r in server.sent_records()] == ["a", "b"]


def test_a_planned_run_whose_batch_keeps_failing_is_deferred_and_completed_with_the_same_keys(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    """Once its plan is stored, a run is completed as planned: the next slot completes it first, under
    its own Idempotency-Keys, and only then plans from the (moved) watermark."""
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    auto = definitions(db, server)
    before = fresh(db, auto).watermark_at
    server.fail_next("invoke", 4, kind="status", status=502)
    summary = execute(auto.uuid, slot(1).isoformat())
    assert summary["status"] == "deferred" and summary["attempts"] == 4, summary
    assert "kept failing after 4 tries" in summary["reason"] and "same Idempotency-Keys" in summary["reason"]
    assert fresh(db, auto).watermark_at == before and server.sent_records() == []
    first = run_of(db, auto, slot(1))
    server.set_records("supplier", [record("a", 1), record("b", 2, updated=3)])  # b changes meanwhile
    assert execute(auto.uuid, slot(2).isoformat())["status"] == "succeeded"
    assert run_of(db, auto, slot(1)).status == "succeeded"
    keys_applied = {inv.key for inv in server.invocations()}
    assert keys_applied == {f"{first.uuid}:0", f"{run_of(db, auto, slot(2)).uuid}:0"}
    # the planned versions went under the first run's key; b's newer version went with the next slot
    applied = [(r["id"], r["updated_at"]) for r in server.sent_records()]
    assert applied == [("a", record("a", 1)["updated_at"]), ("b", record("b", 2)["updated_at"]),
                       ("b", record("b", 2, updated=3)["updated_at"])]


def test_other_4xx_and_malformed_bodies_fail_without_retry(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    server.fail_next("invoke", 1, kind="status", status=422)
    summary = execute(auto.uuid, slot(1).isoformat())
    assert summary["status"] == "failed" and summary["attempts"] == 1
    assert summary["reason"] == "the integration API refused the request" and "HTTP 422" in summary["error"]
    server.fail_next("objects", 1, kind="malformed")
    summary = execute(auto.uuid, slot(2).isoformat())
    assert summary["status"] == "failed" and "not JSON" in summary["error"]


def test_a_page_failing_midway_fails_the_run_and_loses_nothing(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(7)])  # 3 pages of 3
    auto = definitions(db, server)
    server.fail_next("objects", 4, kind="status", status=500, skip=1)  # page 2 fails every try
    summary = execute(auto.uuid, slot(1).isoformat())
    assert summary["status"] == "failed" and "page 1" in summary["error"]
    assert server.sent_records() == [] and fresh(db, auto).watermark_at == T0 - timedelta(days=1)
    assert execute(auto.uuid, slot(2).isoformat())["status"] == "succeeded"
    assert [r["id"] for r in server.sent_records()] == [f"r{i}" for i in range(7)]
