"""Runs against a partner that enforces its limits: the budget waits, pauses and defers; a deferred run
resumes at resume_at with the same Idempotency-Keys; one connection's spent quota never holds another's
runs (issue 12)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy.orm import Session

from models import keys
from models.base import utcnow
from models.settings import get_settings
from tasks.run import execute
from tests.support.factories import make_connection
from tests.support.integration_server import IntegrationServer, PartnerLimits, integration_server
from tests.support.run_helpers import definitions, fresh, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]
RECORDS = [record(f"r{i}", i) for i in range(5)]  # 3 batches of 2


@pytest.fixture()
def budget_keys(rclient: redis.Redis) -> Iterator[None]:
    yield
    stale = list(rclient.scan_iter(keys.PREFIX + "budget:*"))
    if stale:
        rclient.delete(*stale)


@pytest.fixture()
def quick(monkeypatch: pytest.MonkeyPatch, fast: None, budget_keys: None) -> None:
    monkeypatch.setattr(get_settings(), "budget_max_wait_s", 0.5)


def _xero(db: Session, server: IntegrationServer, **fields: object) -> object:
    conn = make_connection(db, provider="XERO", provider_name="Xero", api_domain=server.url,
                           account_server=server.url, **fields)
    return definitions(db, server, connection=conn)


def _applied(server: IntegrationServer) -> Counter[tuple[str, str]]:
    return Counter((str(r["id"]), str(r["updated_at"])) for r in server.sent_records())


def test_a_spent_daily_quota_defers_the_run_and_another_connection_runs_at_once(
        db: Session, server: IntegrationServer, quick: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", RECORDS)
    server.state.limits = PartnerLimits(per_day=0, day_retry_after_s=10800)  # spent for three hours
    auto = _xero(db, server)
    began = time.monotonic()
    summary = execute(auto.uuid, slot().isoformat())
    assert time.monotonic() - began < 3, "a worker does not sleep on a long Retry-After"
    run = run_of(db, auto)
    assert summary["status"] == "deferred" and run.status == "deferred"
    assert run.resume_at is not None and timedelta(hours=2, minutes=59) < run.resume_at - utcnow()
    assert "XERO answered 429 (day limit); Retry-After 10800 s; resumes at" in (run.reason or "")
    assert run.throttled == 1 and server.state.throttled_total == 1  # every worker now waits: no more calls
    assert execute(auto.uuid, slot(3).isoformat())["status"] == "skipped"  # still going: deferred
    assert server.state.calls_total == 1
    with integration_server() as healthy:  # another tenant's connection is not held up at all
        healthy.set_records("supplier", RECORDS)
        other = _xero(db, healthy, remote_instance_id="tenant-2")
        began = time.monotonic()
        assert execute(other.uuid, slot().isoformat())["status"] == "succeeded"
        assert time.monotonic() - began < 3 and len(healthy.sent_records()) == 5


def test_a_deferred_run_resumes_at_resume_at_with_the_same_keys_and_sends_nothing_twice(
        db: Session, server: IntegrationServer, quick: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", RECORDS)
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="2", skip=1)  # batch 1
    auto = _xero(db, server)
    summary = execute(auto.uuid, slot().isoformat())
    run = run_of(db, auto)
    assert summary["status"] == "deferred" and run.batches_sent == 1 and run.resume_at is not None
    assert fresh(db, auto).watermark_version == 0  # the watermark moves only at the end
    early = execute(auto.uuid, slot().isoformat())  # a delivery before resume_at defers it again
    assert early["status"] == "deferred" and len(server.invocations()) == 1  # paused: no call made
    time.sleep(max(0.0, (run_of(db, auto).resume_at - utcnow()).total_seconds()) + 0.1)
    done = execute(auto.uuid, slot().isoformat())
    assert done["status"] == "succeeded" and done["records_sent"] == 5, done
    assert {inv.key for inv in server.invocations()} == {f"{run.uuid}:{i}" for i in range(3)}
    assert _applied(server) == Counter((str(r["id"]), r["updated_at"]) for r in RECORDS)
    final = run_of(db, auto)
    assert final.throttled == 1 and fresh(db, auto).watermark_version == 1


def test_a_429_within_the_wait_is_waited_out_through_the_budget_not_counted_as_a_failed_attempt(
        db: Session, server: IntegrationServer, quick: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", RECORDS)
    server.fail_next("objects", 1, kind="status", status=429, retry_after="0.3")
    auto = _xero(db, server)
    summary = execute(auto.uuid, slot().isoformat())
    run = run_of(db, auto)
    assert summary["status"] == "succeeded" and run.attempts == 1 and run.throttled == 1
    assert run.budget_wait_ms >= 200


def test_the_partner_never_sees_more_calls_in_flight_than_the_connections_concurrent(
        db: Session, server: IntegrationServer, quick: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "budget_max_wait_s", 10.0)
    server.set_records("supplier", RECORDS)
    server.state.invoke_delay_s = 0.1
    server.state.limits = PartnerLimits(concurrent=2)
    first = _xero(db, server, rate_limits={"concurrent": 2, "per_minute": None})
    autos = [first] + [definitions(db, server, connection=first.connection, pf=first.partner_function)
                       for _ in range(5)]
    results: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda a=a: results.append(execute(a.uuid, slot().isoformat())))
               for a in autos]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [r["status"] for r in results] == ["succeeded"] * 6
    assert server.state.max_in_flight <= 2 and server.state.throttled_total == 0
    assert sum(run_of(db, a).budget_wait_ms for a in autos) > 0


def test_trigger_now_on_a_throttled_connection_is_queued_and_deferred_like_any_other(
        db: Session, server: IntegrationServer, quick: None, rclient: redis.Redis) -> None:
    from models.limits import limits_for
    from tasks.budget import Budget, Scope
    from tasks.manual_runs import queue_manual_run

    server.set_records("supplier", RECORDS)
    auto = _xero(db, server)
    conn = auto.connection
    Budget(Scope(conn.uuid, conn.provider, limits_for(conn.provider, None)), rclient).pause(
        3600, "XERO answered 429 (day limit); Retry-After 3600 s")
    run, _ = queue_manual_run(db, conn.uuid, auto.uuid)  # what POST .../run records before its 202
    db.commit()
    summary = execute(auto.uuid, run.scheduled_for.isoformat())
    stored = run_of(db, auto, run.scheduled_for)
    assert summary["status"] == "deferred" and stored.trigger == "manual" and stored.resume_at is not None
    assert "XERO answered 429 (day limit)" in (stored.reason or "") and server.state.calls_total == 0
