"""Fault 4: every PostgreSQL connection of the test database terminated (pg_terminate_backend), again and
again, while beat ticks and runs are going: beat keeps dispatching, every slot ends in one finished run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from models.automation import Automation
from models.notify import schedule_changed
from tests.faults.support import applied_by_run, fault_env, log_dir, logs, runs_of, unfinished, wait_for
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record

RECORDS = ["r0", "r1", "r2"]
DROP_EVERY_S = 0.7
DROP_FOR_S = 8.0
RECOVERY_S = 10.0

TERMINATE = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                 "WHERE datname = :db AND pid <> pg_backend_pid()")


def _terminator(url: str, stop: threading.Event, counts: list[int]) -> None:
    """Terminate every other backend of the database every DROP_EVERY_S until told to stop."""
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    name = make_url(url).database
    try:
        while not stop.wait(DROP_EVERY_S):
            with engine.connect() as conn:
                counts.append(int(conn.execute(TERMINATE, {"db": name}).scalar() or 0))
    finally:
        engine.dispose()


def _due_now(db: Session, autos: list[Automation]) -> datetime:
    """Make these automations due now; the slot they will run for."""
    now = datetime.now(UTC).replace(microsecond=0)
    db.execute(update(Automation).where(Automation.id.in_([a.id for a in autos])).values(next_run_at=now))
    db.commit()
    db.close()
    return now


def test_dropped_postgres_connections_during_ticks_and_runs_recover(
        db: Session, database_url: str, server: IntegrationServer, queues: redis.Redis, started: list,
        tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend is PostgreSQL's: this fault runs in the PostgreSQL pass only")
    server.set_records("supplier", [record(rid, i) for i, rid in enumerate(RECORDS)])
    server.state.invoke_delay_s = 0.4  # runs are mid-way when their connections are cut
    later = datetime.now(UTC) + timedelta(days=1)
    first = definitions(db, server, next_run_at=later)
    more = {"connection": first.connection, "pf": first.partner_function, "next_run_at": later}
    autos = [first] + [definitions(db, server, **more) for _ in range(11)]
    probe = definitions(db, server, **more)
    env, at = fault_env(), log_dir(tmp_path)
    worker, beat = processes.start_worker(env, "worker", 2, at), processes.start_beat(env, "beat", at)
    started.extend([worker, beat])
    wait_for(lambda: "became leader" in processes.log_of(beat), 30, lambda: logs([beat]))
    stop, counts = threading.Event(), []
    cutter = threading.Thread(target=_terminator, args=(database_url, stop, counts), daemon=True)
    slots = {a.id: _due_now(db, [a]) for a in autos[:6]}
    schedule_changed(queues)
    cutter.start()
    time.sleep(DROP_FOR_S / 2)
    slots.update({a.id: _due_now(db, [a]) for a in autos[6:]})  # due while beat's connections are cut
    schedule_changed(queues)
    time.sleep(DROP_FOR_S / 2)
    stop.set()
    cutter.join(timeout=10)
    probe_slot = _due_now(db, [probe])
    schedule_changed(queues)
    recovered = time.monotonic()
    ids = {a.id: a.uuid for a in [*autos, probe]}

    def settled() -> bool:
        got = {(r.automation_id, r.scheduled_for) for r in runs_of(db, ids) if r.finished}
        return set(slots.items()) | {(probe.id, probe_slot)} <= got

    wait_for(settled, 90, lambda: f"unfinished {unfinished(runs_of(db, ids))}\n{logs([beat, worker])}")
    recovery_s = time.monotonic() - recovered
    _assert_once(runs_of(db, ids), server)
    assert beat.poll() is None and worker.poll() is None, "beat or the worker died"
    assert recovery_s <= RECOVERY_S + 20, f"the probe slot finished {recovery_s:.1f} s after the cuts stopped"
    statuses = Counter(r.status for r in runs_of(db, ids))
    print(f"\nfault 4: {sum(counts)} backends terminated in {len(counts)} rounds; {len(slots) + 1} slots "
          f"ended in one run each {dict(statuses)}; probe slot done {recovery_s:.1f} s after the last cut")


def _assert_once(runs: list, server: IntegrationServer) -> None:
    """One run row per slot; each record applied at most once per run; succeeded runs applied them all."""
    per_slot = Counter((r.automation_id, r.scheduled_for) for r in runs)
    assert set(per_slot.values()) == {1}, f"run rows per slot: {per_slot}"
    applied = applied_by_run(server)
    for run in runs:
        got = Counter(applied.get(run.uuid, []))
        assert all(n == 1 for n in got.values()), f"run {run.uuid}: records applied {dict(got)}"
        if run.status == "succeeded":
            assert sorted(got) == RECORDS, f"run {run.uuid} succeeded but applied {dict(got)}"
    # A cut connection is retried once on a fresh one, then the task itself is retried (1, 2, 4, 8 s: longer
    # than the cuts last) and resumes from its saved plan: no run ends failed because the database blinked.
    not_ok = [(r.uuid, r.status, r.reason, r.error) for r in runs if r.status != "succeeded"]
    assert not not_ok, f"runs that did not succeed: {not_ok}"
