"""Partner limits end to end (issue 12): real prefork worker processes, a real beat, real Redis, and a
loopback partner that enforces per-minute, concurrency and daily limits with 429 + Retry-After (and Xero's
X-MinLimit-Remaining headers).

- many automations of one XERO connection, run by six worker processes at once: all succeed, every record
  version applied exactly once per automation (by content, across Idempotency-Keys), at most 5 % of the
  partner's answers are 429, it never has more calls in flight than the connection's `concurrent`, and no
  60-second window holds more calls than its per-minute limit (the calls past it defer and beat resumes
  them at resume_at);
- a spent daily quota (Retry-After of three hours) defers that connection's runs, and a run of another
  connection, queued behind more of them than there are worker processes, succeeds within seconds;
- a deferred run resumes at resume_at through beat's resume sweep and finishes once, no record sent
  twice, the watermark moved once; also when its worker is SIGKILLed mid-batch after resuming; and a
  4 s deferral resumes at its resume_at although beat's periodic sweep is 20 s away;
- a SIGKILLed worker's calls in flight keep their leases until the lease TTL, then the permits come back
  (connect + read timeout + BUDGET_LEASE_MARGIN_S, scaled down to 4 s), and the partner still never sees
  more calls in flight than `concurrent` while the runs are resumed by another worker.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from models import keys
from models.automation import Automation
from models.base import utcnow
from models.connection import Connection
from models.db import get_engine
from models.limits import limits_for
from tasks.budget import Budget, Scope
from tasks.enqueue import enqueue_run
from tests.faults.support import WatermarkWatch, fault_env, kill_group, log_dir, logs, runs_of, wait_for
from tests.support import processes
from tests.support.factories import make_connection
from tests.support.integration_server import IntegrationServer, PartnerLimits, integration_server
from tests.support.run_helpers import definitions, fresh, record, run_of, slot

RECORDS = [record(f"r{i}", i) for i in range(5)]  # 3 batches of the suite's INVOKE_BATCH_SIZE=2
FOUR = RECORDS[:4]  # 2 batches: a run makes 3 calls (one page, two invokes)
FAR = timedelta(days=1)  # beat's own schedule never fires during a test: only what the test sends runs


@pytest.fixture()
def budgets(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    """The session's Redis (text replies); every connection's budget keys are removed afterwards."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    stale = list(client.scan_iter(keys.PREFIX + "budget:*"))
    if stale:
        client.delete(*stale)
    client.close()


def _xero(db: Session, server: IntegrationServer, tenant: str, **fields: Any) -> Connection:
    """A XERO connection (its defaults: 60/min, 5,000/day, 5 at once) whose API is the loopback partner."""
    conn = make_connection(db, provider="XERO", provider_name="Xero", api_domain=server.url,
                           account_server=server.url, remote_instance_id=tenant, **fields)
    db.commit()
    return conn


def _automations(db: Session, server: IntegrationServer, conn: Connection, n: int) -> list[Automation]:
    """n automations of one connection and partner function, none due by beat's schedule."""
    first = definitions(db, server, connection=conn, next_run_at=utcnow() + FAR)
    rest = [definitions(db, server, connection=conn, pf=first.partner_function, next_run_at=utcnow() + FAR)
            for _ in range(n - 1)]
    return [first, *rest]


def _budget(conn: Connection, client: redis.Redis) -> Budget:
    """The connection's budget as the workers see it (for its state: used, in flight, paused until)."""
    scope = Scope(conn.uuid, conn.provider, limits_for(conn.provider, conn.rate_limits), conn.client_id,
                  conn.remote_instance_id)
    return Budget(scope, client)


def _applied(server: IntegrationServer) -> Counter[tuple[str, str, str]]:
    """(automation uuid, record id, updated_at) of every record the partner applied, over every
    Idempotency-Key: a version sent twice under two keys counts twice."""
    with server.state.lock:
        applied = list(server.state.applied.values())
    return Counter((str(inv.body["automation"]["uuid"]), str(r["id"]), str(r["updated_at"]))
                   for inv in applied for r in inv.body.get("records", []))


def _expected(autos: list[Automation], records: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """Each automation's records, each version once."""
    return Counter((a.uuid, str(r["id"]), str(r["updated_at"])) for a in autos for r in records)


def _busiest_minute(server: IntegrationServer) -> int:
    """The most calls the partner let through in any 60-second window."""
    with server.state.lock:
        times = sorted(server.state.calls)
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - 60:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _statuses(db: Session, autos: list[Automation]) -> Counter[str]:
    """How many of the automations' runs are in each status, as stored now."""
    return Counter(r.status for r in runs_of(db, [a.id for a in autos]))


def _workers(env: dict[str, str], at: Path, started: list[subprocess.Popen[bytes]], n: int,
             concurrency: int, name: str = "w") -> list[subprocess.Popen[bytes]]:
    """n prefork workers, each ready (its pool forked) before this returns."""
    workers = [processes.start_worker(env, f"{name}{i}", concurrency, at) for i in range(n)]
    started.extend(workers)
    for worker in workers:
        assert processes.wait_for_log(worker, " ready.", 60), logs([worker])
    return workers


def _beat(env: dict[str, str], at: Path, started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """A real beat (database scheduler, resume sweep), ready before this returns."""
    beat = processes.start_beat(env, "beat", at)
    started.append(beat)
    assert processes.wait_for_log(beat, "database scheduler ready", 60), logs([beat])
    return beat


def test_many_automations_of_one_connection_share_its_budget_across_worker_processes(
        db: Session, server: IntegrationServer, queues: redis.Redis, budgets: redis.Redis, started: list,
        tmp_path: Path) -> None:
    """8 runs × 3 calls on one connection limited to 20 a minute and 3 at once, 6 worker processes: 20
    calls go at once (3 in flight at most), the 4 past the minute defer, and beat resumes them a minute on."""
    server.set_records("supplier", FOUR)
    server.state.fetch_delay_s, server.state.invoke_delay_s = 0.1, 0.2  # calls overlap: `concurrent` binds
    server.state.limits = PartnerLimits(per_minute=20, concurrent=3)
    conn = _xero(db, server, "tenant-busy", rate_limits={"per_minute": 20, "concurrent": 3})
    autos = _automations(db, server, conn, 8)
    env, at = fault_env(BUDGET_MAX_WAIT_S="10"), log_dir(tmp_path)
    workers = _workers(env, at, started, 2, 3)
    beat = _beat(env, at, started)
    the_slot = slot()
    with WatermarkWatch(get_engine(), [a.id for a in autos]) as watch:
        for auto in autos:
            enqueue_run(auto.uuid, the_slot)
        wait_for(lambda: _statuses(db, autos)["succeeded"] == len(autos), 110,
                 lambda: f"{_statuses(db, autos)} calls {server.state.calls_total}\n{logs([*workers, beat])}")
    runs = runs_of(db, [a.id for a in autos])
    assert len(runs) == len(autos) and len({(r.automation_id, r.scheduled_for) for r in runs}) == len(autos)
    assert _applied(server) == _expected(autos, FOUR)  # nothing lost, nothing applied twice
    keys_sent = Counter(inv.key for inv in server.invocations())
    assert len(keys_sent) == 2 * len(autos), keys_sent
    state = server.state
    assert state.calls_total > 20, "more calls than fit in one minute"
    assert state.throttled_total <= 0.05 * state.calls_total, (state.throttled_total, state.calls_total)
    assert state.max_in_flight <= 3, state.max_in_flight
    assert _busiest_minute(server) <= 20
    deferred = [(r.resume_at, r.finished_at) for r in runs if r.resume_at is not None]
    assert deferred, "the calls past the minute's 20 deferred their runs"
    for resume_at, finished_at in deferred:  # resumed by beat at resume_at, not before
        assert finished_at is not None and finished_at >= resume_at, (resume_at, finished_at)
    assert sum(r.budget_wait_ms for r in runs) > 0  # calls waited for a lease in flight
    assert sum(r.throttled for r in runs) == state.throttled_total
    assert all(fresh(db, a).watermark_version == 1 for a in autos)
    assert watch.backwards() == []


def test_a_spent_daily_quota_defers_its_runs_and_another_connections_run_succeeds_within_seconds(
        db: Session, server: IntegrationServer, queues: redis.Redis, budgets: redis.Redis, started: list,
        tmp_path: Path) -> None:
    """Twice as many runs of the spent connection as worker processes are queued first; without deferral
    they would hold every process for three hours (issue 12). The healthy connection's run is not held."""
    server.set_records("supplier", RECORDS)
    server.state.limits = PartnerLimits(per_day=0, day_retry_after_s=10800)
    spent = _xero(db, server, "tenant-spent")
    spent_autos = _automations(db, server, spent, 8)
    env, at = fault_env(), log_dir(tmp_path)
    workers = _workers(env, at, started, 2, 2)  # 4 worker processes
    with integration_server() as healthy_server:
        healthy_server.set_records("supplier", RECORDS)
        healthy = _xero(db, healthy_server, "tenant-healthy")
        [healthy_auto] = _automations(db, healthy_server, healthy, 1)
        the_slot = slot()
        for auto in spent_autos:
            enqueue_run(auto.uuid, the_slot)
        wait_for(lambda: server.state.throttled_total >= 1, 30, lambda: logs(workers))
        began = time.monotonic()
        enqueue_run(healthy_auto.uuid, the_slot)
        took = wait_for(lambda: _statuses(db, [healthy_auto])["succeeded"] == 1, 30,
                        lambda: f"{_statuses(db, [healthy_auto])}\n{logs(workers)}")
        assert took < 5, f"the healthy connection's run took {took:.1f} s"
        assert time.monotonic() - began < 5
        assert len(healthy_server.sent_records()) == len(RECORDS)
        assert healthy_server.state.throttled_total == 0
    wait_for(lambda: _statuses(db, spent_autos)["deferred"] == len(spent_autos), 30,
             lambda: f"{_statuses(db, spent_autos)}\n{logs(workers)}")
    for run in runs_of(db, [a.id for a in spent_autos]):
        assert run.resume_at is not None
        assert timedelta(hours=2, minutes=59) < run.resume_at - utcnow() <= timedelta(hours=3), run.resume_at
        reason = run.reason or ""
        assert "XERO answered 429 (day limit); Retry-After 10800 s; resumes at" in reason, reason
    # The first 429 paused the connection for every worker: at most one call per process got through
    # before the pause was seen, and none after it.
    assert 1 <= server.state.calls_total == server.state.throttled_total <= 4, server.state.calls_total
    assert server.sent_records() == []
    paused = _budget(spent, budgets).state()
    assert paused["paused_until"] is not None and "day limit" in (paused["paused_reason"] or "")
    assert _budget(healthy, budgets).state()["paused_until"] is None


def _deferred_then(db: Session, auto: Automation, the_slot: datetime, workers: list, beat: Any) -> datetime:
    """Wait until the run is deferred; its resume_at."""
    wait_for(lambda: run_of(db, auto, the_slot).resume_at is not None
             if _statuses(db, [auto]) else False, 30, lambda: logs([*workers, beat]))
    run = run_of(db, auto, the_slot)
    assert run.batches_sent == 1 and run.resume_at is not None, run
    assert "XERO answered 429; Retry-After 4 s; resumes at" in (run.reason or ""), run.reason
    return run.resume_at


@pytest.mark.parametrize("kill_after_resuming", [False, True], ids=["resumed", "killed-after-resuming"])
def test_a_deferred_run_resumes_at_resume_at_through_beat_and_finishes_exactly_once(
        db: Session, server: IntegrationServer, queues: redis.Redis, budgets: redis.Redis, started: list,
        tmp_path: Path, kill_after_resuming: bool) -> None:
    """Batch 2 of 3 is answered 429 Retry-After 4 s (> BUDGET_MAX_WAIT_S 2 s): the run defers with batch 1
    acknowledged; beat's resume sweep dispatches it at resume_at; it sends batches 2 and 3 with the same
    keys. With a kill: the worker holding the resumed run dies with batch 2 in flight, and the run is
    resumed again (beat's sweep or kombu's redelivery) from batch 2, under the same key."""
    server.set_records("supplier", RECORDS)
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="4", skip=1)
    conn = _xero(db, server, "tenant-deferred")
    [auto] = _automations(db, server, conn, 1)
    env, at = fault_env(BUDGET_MAX_WAIT_S="2"), log_dir(tmp_path)
    beat = _beat(env, at, started)
    workers = _workers(env, at, started, 1, 2, name="first")
    the_slot = slot()
    with WatermarkWatch(get_engine(), [auto.id]) as watch:
        enqueue_run(auto.uuid, the_slot)
        resume_at = _deferred_then(db, auto, the_slot, workers, beat)
        if kill_after_resuming:
            server.state.invoke_delay_s = 1.5
            # the resumed run's batch 2 is in flight (batch 1 and this one are the invokes started)
            wait_for(lambda: server.state.invokes_started >= 2, 30, lambda: logs([*workers, beat]))
            assert time.time() >= resume_at.timestamp() - 0.05
            assert run_of(db, auto, the_slot).status == "running"
            kill_group(workers[0])
            server.state.invoke_delay_s = 0.0
            workers += _workers(env, at, started, 1, 2, name="survivor")
        wait_for(lambda: _statuses(db, [auto])["succeeded"] == 1, 45,
                 lambda: f"{_statuses(db, [auto])}\n{logs([*workers, beat])}")
    run = run_of(db, auto, the_slot)
    invocations = server.invocations()
    resumed = [inv for inv in invocations if inv.key != f"{run.uuid}:0"]
    assert resumed and min(inv.at for inv in resumed) >= resume_at.timestamp() - 0.05, "not before resume_at"
    if not kill_after_resuming:  # beat dispatched it when resume_at came (its sweep is due then)
        assert min(inv.at for inv in resumed) - resume_at.timestamp() < 2.5
    assert {inv.key for inv in invocations} == {f"{run.uuid}:{i}" for i in range(3)}
    assert _applied(server) == _expected([auto], RECORDS)  # every version once, across keys
    sent_twice = {k for k, n in Counter(inv.key for inv in invocations).items() if n > 1}
    assert sent_twice == ({f"{run.uuid}:1"} if kill_after_resuming else set()), sent_twice
    assert run.records_sent == len(RECORDS) and run.throttled == 1 and run.resume_at == resume_at
    assert len(runs_of(db, [auto.id])) == 1
    assert fresh(db, auto).watermark_version == 1  # moved once, at the end
    assert watch.backwards() == []


def test_a_short_deferral_resumes_at_resume_at_although_the_sweep_interval_is_longer(
        db: Session, server: IntegrationServer, queues: redis.Redis, budgets: redis.Redis, started: list,
        tmp_path: Path) -> None:
    """RESUME_SWEEP_S 20 s (production: 30 s; BUDGET_MAX_WAIT_S 10 s, so 10-30 s deferrals are common
    under a per-minute limit): the run deferred for 4 s after beat's first sweep should still be
    dispatched when resume_at comes: a deferral bumps the schedule generation, so beat sweeps again at
    once and plans its next sweep for this resume_at."""
    server.set_records("supplier", RECORDS)
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="4", skip=1)
    conn = _xero(db, server, "tenant-late")
    [auto] = _automations(db, server, conn, 1)
    env, at = fault_env(BUDGET_MAX_WAIT_S="2", RESUME_SWEEP_S="20"), log_dir(tmp_path)
    beat = _beat(env, at, started)
    workers = _workers(env, at, started, 1, 2)
    the_slot = slot()
    enqueue_run(auto.uuid, the_slot)
    resume_at = _deferred_then(db, auto, the_slot, workers, beat)
    due = max(0.5, resume_at.timestamp() + 2.5 - time.time())
    resumed = processes.wait_until(lambda: len(server.invocations()) >= 2, due)
    assert resumed, f"not resumed within 2.5 s of resume_at {resume_at.isoformat()}"


def test_a_sigkilled_workers_calls_in_flight_give_their_permits_back_within_the_lease_ttl(
        db: Session, server: IntegrationServer, queues: redis.Redis, budgets: redis.Redis, started: list,
        tmp_path: Path) -> None:
    """Lease TTL = connect 0.5 + read 3 + margin 0.5 = 4 s. Three runs hold the connection's three permits
    (slow partner answers) when their worker is SIGKILLed: the leases stay (the partner may still be
    serving those calls), come back within 4 s, and the runs, resumed by another worker, never make the
    partner see more than 3 calls in flight."""
    server.set_records("supplier", FOUR)
    server.state.fetch_delay_s = server.state.invoke_delay_s = 2.0
    server.state.limits = PartnerLimits(concurrent=3)
    conn = _xero(db, server, "tenant-killed", rate_limits={"concurrent": 3})
    autos = _automations(db, server, conn, 3)
    budget = _budget(conn, budgets)
    env = fault_env(HTTP_CONNECT_TIMEOUT_S="0.5", HTTP_READ_TIMEOUT_S="3", BUDGET_LEASE_MARGIN_S="0.5")
    at = log_dir(tmp_path)
    beat = _beat(env, at, started)
    [doomed] = _workers(env, at, started, 1, 3, name="doomed")
    the_slot = slot()
    for auto in autos:
        enqueue_run(auto.uuid, the_slot)
    wait_for(lambda: budget.state()["in_flight"] == 3 and server.state.in_flight == 3, 30,
             lambda: f"{budget.state()} partner in flight {server.state.in_flight}\n{logs([doomed])}")
    kill_group(doomed)
    killed_at = time.monotonic()
    assert budget.state()["in_flight"] == 3  # nothing returned them: no shutdown code ran
    back = wait_for(lambda: budget.state()["in_flight"] == 0, 10, lambda: str(budget.state()))
    assert back <= 4.0 + 0.3, f"leases came back {back:.2f} s after the kill (TTL 4 s)"
    lease = budget.acquire("a permit after the leases came back")
    budget.release(lease)
    survivor = _workers(env, at, started, 1, 3, name="survivor")
    wait_for(lambda: _statuses(db, autos)["succeeded"] == len(autos), 60,
             lambda: f"{_statuses(db, autos)}\n{logs([*survivor, beat])}")
    assert time.monotonic() - killed_at < 60
    assert _applied(server) == _expected(autos, FOUR)
    assert server.state.max_in_flight <= 3 and server.state.throttled_total == 0, (
        server.state.max_in_flight, server.state.throttled_total)
