"""Fault 6: definitions corrupted in the database behind the API's back (raw SQL on the criteria and the
schedule JSON): that automation's run fails with a clear reason or beat parks it, and beat and the worker
carry on with every other automation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from models.automation import Automation
from models.notify import schedule_changed
from tests.faults.support import fault_env, log_dir, logs, runs_of, wait_for
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record

CORRUPT_CRITERIA = '{"group_condition": "AND", "rules": "not a list"}'
CORRUPT_SCHEDULE = '{"kind": "interval", "every": "soon", "unit": "fortnight"}'


def _raw(db: Session, auto: Automation, column: str, value: str) -> None:
    """Overwrite one column with raw SQL, as a bad migration or a manual edit would."""
    db.execute(text(f"UPDATE automations SET {column} = :v WHERE id = :id"), {"v": value, "id": auto.id})
    db.commit()


def _due_now(db: Session, autos: list[Automation]) -> datetime:
    """Make these automations due now; the slot they will run for."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = ",".join(str(a.id) for a in autos)
    db.execute(text(f"UPDATE automations SET next_run_at = :t WHERE id IN ({ids})"),
               {"t": now.replace(tzinfo=None)})
    db.commit()
    return now


def test_corrupt_criteria_and_schedule_fail_clearly_and_the_rest_keeps_running(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    server.set_records("supplier", [record("r0", 1, AccountNumber="A")])
    later = datetime.now(UTC) + timedelta(days=1)
    good = definitions(db, server, next_run_at=later, since_last_look_up=False)  # sends r0 every run
    more = {"connection": good.connection, "pf": good.partner_function, "next_run_at": later}
    bad_criteria = definitions(db, server, additional_criteria=True, **more)
    bad_schedule = definitions(db, server, **more)
    _raw(db, bad_criteria, "criteria", CORRUPT_CRITERIA)
    _raw(db, bad_schedule, "schedule", CORRUPT_SCHEDULE)
    env, at = fault_env(), log_dir(tmp_path)
    worker, beat = processes.start_worker(env, "worker", 2, at), processes.start_beat(env, "beat", at)
    started.extend([worker, beat])
    wait_for(lambda: "became leader" in processes.log_of(beat), 30, lambda: logs([beat]))
    for round_no in range(2):  # the good one keeps running after the bad ones were met
        _one_round(db, queues, [good, bad_criteria, bad_schedule], f"round {round_no}", [beat, worker])
    runs = runs_of(db, [good.id, bad_criteria.id, bad_schedule.id])
    _assert_outcomes(runs, good, bad_criteria, bad_schedule, beat)
    assert beat.poll() is None and worker.poll() is None, "beat or the worker died"


def _one_round(db: Session, queues: redis.Redis, autos: list[Automation], what: str, procs: list) -> None:
    """Make all three due now; wait until the good one and the bad-criteria one finished that slot."""
    slot = _due_now(db, autos)
    schedule_changed(queues)
    ids = {a.id: a.uuid for a in autos[:2]}

    def finished() -> bool:
        done = {r.automation_id for r in runs_of(db, ids) if r.scheduled_for == slot and r.finished}
        return done == set(ids)

    wait_for(finished, 40, lambda: f"{what}: {[(r.automation_id, r.status) for r in runs_of(db, ids)]}"
             f"\n{logs(procs)}")
    time.sleep(1.1)  # the next round's slot is another second


def _assert_outcomes(runs: list, good: Automation, bad_criteria: Automation, bad_schedule: Automation,
                     beat: object) -> None:
    """Good runs succeeded; bad criteria failed saying why; the bad schedule was parked, logged by id."""
    by = {a: [r for r in runs if r.automation_id == a.id] for a in (good, bad_criteria, bad_schedule)}
    seen = [(r.status, r.reason) for r in by[good]]
    assert [r.status for r in by[good]] == ["succeeded", "succeeded"], seen
    bad = by[bad_criteria]
    assert len(bad) == 2 and all(r.status == "failed" for r in bad), [(r.status, r.reason) for r in bad]
    assert all("definition is invalid" in (r.reason or "") and r.error for r in bad), \
        [(r.reason, r.error) for r in bad]
    assert by[bad_schedule] == [], "a run was dispatched for an unreadable schedule"
    log = processes.log_of(beat)  # type: ignore[arg-type]
    assert f"automation {bad_schedule.uuid}: unreadable schedule" in log, log[-3000:]
