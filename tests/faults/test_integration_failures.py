"""Fault 5: the integration API fails in every way the contract names, run after run through a real worker:
500s and 429 Retry-After and read timeouts are retried, connection refused / malformed JSON / a page failing
midway fail the run and keep the watermark, and the next good run sends what they did not: no record lost."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy.orm import Session

from models.automation import Automation
from models.connection import Connection
from tasks.enqueue import enqueue_run
from tests.faults.own_redis import free_port
from tests.faults.support import fault_env, log_dir, logs, wait_for
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, fresh, record, run_of, slot


def _run(db: Session, auto: Automation, n: int, worker: object) -> dict:
    """Send slot n through the worker and wait for its run to finish; the run's outcome."""
    the_slot = slot(n)
    enqueue_run(auto.uuid, the_slot)
    began = time.monotonic()

    def done() -> bool:
        try:
            return bool(run_of(db, auto, the_slot).finished)
        except Exception:  # noqa: BLE001  (no row yet)
            return False

    wait_for(done, 60, lambda: f"slot {n} of {auto.uuid} never finished\n{logs([worker])}")  # type: ignore[list-item]
    run = run_of(db, auto, the_slot)
    return {"status": run.status, "attempts": run.attempts, "reason": run.reason or "",
            "error": run.error or "", "sent": run.records_sent, "seconds": time.monotonic() - began}


def test_integration_api_failures_retry_as_specified_and_lose_no_record(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    recs = [record(f"r{i}", i) for i in range(9)]
    server.set_records("supplier", recs[:2])
    auto = definitions(db, server)
    start_mark = fresh(db, auto).watermark_at
    worker = processes.start_worker(fault_env(HTTP_READ_TIMEOUT_S="1", FETCH_PAGE_SIZE="2"), "worker", 1,
                                    log_dir(tmp_path))
    started.append(worker)
    run = lambda n: _run(db, auto, n, worker)  # noqa: E731
    server.fail_next("invoke", 2, kind="status", status=500)
    out = run(1)
    assert (out["status"], out["attempts"], out["sent"]) == ("succeeded", 3, 2), out
    server.set_records("supplier", recs[:4])
    server.fail_next("invoke", 1, kind="status", status=429, retry_after="2")
    out = run(2)
    # Retry-After honoured through the connection's budget (a pause for every worker), not a failed attempt
    assert (out["status"], out["attempts"]) == ("succeeded", 1) and out["seconds"] >= 2, out
    assert run_of(db, auto, slot(2)).throttled == 1
    server.set_records("supplier", recs[:5])
    server.fail_next("objects", 1, kind="timeout", stall_s=2.5)
    out = run(3)
    assert (out["status"], out["attempts"], out["sent"]) == ("succeeded", 2, 1), out
    mark = fresh(db, auto).watermark_at
    server.set_records("supplier", recs[:6])
    _refuse_connections(db, auto, server, lambda: _expect_failed(run(4), "kept failing after 4 tries", 4))
    server.fail_next("objects", 1, kind="malformed")
    _expect_failed(run(5), "the integration API refused the request", 1)
    server.set_records("supplier", recs)  # r5..r8 now: two pages of two, the second failing every try
    server.fail_next("objects", 4, kind="status", status=500, skip=1)
    _expect_failed(run(6), "kept failing after 4 tries", 4)
    assert fresh(db, auto).watermark_at == mark, "a failed run moved the watermark"
    out = run(7)
    assert (out["status"], out["sent"]) == ("succeeded", 4), out
    applied = Counter(str(r["id"]) for r in server.sent_records())
    assert applied == Counter(f"r{i}" for i in range(9)), f"records applied: {dict(applied)}"
    assert fresh(db, auto).watermark_at == start_mark + timedelta(days=1, minutes=8)


def _expect_failed(out: dict, reason: str, attempts: int) -> None:
    """A failed run with that reason after that many tries, nothing sent."""
    assert out["status"] == "failed" and reason in out["reason"] and out["attempts"] == attempts, out
    assert out["sent"] == 0, out


def _refuse_connections(db: Session, auto: Automation, server: IntegrationServer, body: object) -> None:
    """Point the connection at a loopback port nobody listens on while `body` runs, then back."""
    conn = db.get(Connection, auto.connection_id)
    assert conn is not None
    conn.api_domain = f"http://127.0.0.1:{free_port()}"
    db.commit()
    try:
        body()  # type: ignore[operator]
    finally:
        conn.api_domain = server.url
        db.commit()
