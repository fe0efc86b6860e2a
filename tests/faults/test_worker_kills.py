"""Fault 1: a worker SIGKILLed mid-run 20 times over a stream of due slots: none lost, none applied twice."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import redis
from sqlalchemy.orm import Session

from models.automation import Automation
from models.run import Run
from tasks.enqueue import enqueue_run
from tests.faults.support import (
    applied_by_run,
    fault_env,
    keys_received,
    kill_group,
    log_dir,
    logs,
    runs_of,
    slots_per_run_row,
    unfinished,
    wait_for,
)
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record, slot

AUTOMATIONS = 40
KILLS = 20
RECORDS = ["r0", "r1", "r2"]  # two batches of the suite's INVOKE_BATCH_SIZE=2 per run


def _automations(db: Session, server: IntegrationServer) -> list[Automation]:
    """AUTOMATIONS automations on one connection whose integration API is the loopback server."""
    first = definitions(db, server)
    rest = [definitions(db, server, connection=first.connection, pf=first.partner_function)
            for _ in range(AUTOMATIONS - 1)]
    return [first, *rest]


def _kill_mid_run(server: IntegrationServer, procs: list[subprocess.Popen[bytes]], env: dict[str, str],
                  logs_at: Path, n: int) -> None:
    """Start a worker, wait until one of its invoke calls is in flight, then SIGKILL its whole group."""
    before = server.state.invokes_started
    worker = processes.start_worker(env, f"doomed-{n}", 2, logs_at)
    procs.append(worker)
    wait_for(lambda: server.state.invokes_started > before, 60,
             lambda: f"kill {n}: no invoke started by worker {worker.pid}\n{logs([worker])}")
    kill_group(worker)


def test_twenty_sigkills_mid_run_lose_no_slot_and_apply_no_batch_twice(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list,
        tmp_path: Path) -> None:
    server.set_records("supplier", [record(rid, i) for i, rid in enumerate(RECORDS)])
    server.state.invoke_delay_s = 1.0  # a run spends ~2 s in invoke calls: a kill lands mid-run
    autos = _automations(db, server)
    the_slot = slot()
    for auto in autos:
        enqueue_run(auto.uuid, the_slot)
    env, logs_at = fault_env(), log_dir(tmp_path)
    began = time.monotonic()
    for n in range(KILLS):
        _kill_mid_run(server, started, env, logs_at, n)
    server.state.invoke_delay_s = 0.1
    survivor = processes.start_worker(env, "survivor", 2, logs_at)
    started.append(survivor)
    # The killed workers' call-in-flight leases hold the connection's budget until their TTL: runs that
    # would wait longer are deferred, and beat (its resume sweep) dispatches them when that comes.
    started.append(processes.start_beat(env, "beat", logs_at))
    ids = {a.id: a.uuid for a in autos}

    def all_finished() -> bool:
        runs = runs_of(db, ids)
        return len(runs) == AUTOMATIONS and not unfinished(runs)

    wait_for(all_finished, 180, lambda: f"runs not finished: {unfinished(runs_of(db, ids))} "
             f"of {len(runs_of(db, ids))} rows\n{logs([survivor])}")
    _assert_each_slot_ran_once_with_one_effect(db, server, ids)
    runs = runs_of(db, ids)
    print(f"\nfault 1: {KILLS} SIGKILLs mid-run, {AUTOMATIONS} slots, "
          f"{sum(r.attempts > 1 for r in runs)} runs resumed after a kill (max attempts "
          f"{max(r.attempts for r in runs)}), {sum(c > 1 for c in keys_received(server).values())} "
          f"batches re-sent and de-duplicated by Idempotency-Key, duplicates applied 0, "
          f"{time.monotonic() - began:.0f} s")


def _assert_each_slot_ran_once_with_one_effect(db: Session, server: IntegrationServer,
                                               ids: dict[int, str]) -> None:
    """One succeeded run per slot that sent every record; the partner applied each record once per run."""
    runs: list[Run] = runs_of(db, ids)
    rows = slots_per_run_row(runs)
    assert set(rows.values()) == {1} and len(rows) == AUTOMATIONS, f"run rows per slot: {rows}"
    failed = [(ids[r.automation_id], r.status, r.reason) for r in runs if r.status != "succeeded"]
    assert not failed, f"runs that did not succeed: {failed}"
    applied = applied_by_run(server)
    for run in runs:
        got = Counter(applied.get(run.uuid, []))
        assert got == Counter(RECORDS), (
            f"automation {ids[run.automation_id]} run {run.uuid}: partner applied {dict(got)}, "
            f"expected each of {RECORDS} once")
        assert run.records_sent == len(RECORDS), f"run {run.uuid} records_sent {run.records_sent}"
    strangers = set(applied) - {r.uuid for r in runs}
    assert not strangers, f"batches applied for runs that do not exist: {strangers}"
