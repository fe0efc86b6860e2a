"""One batch of due automations: select through ix_automations_due, publish a run per slot, advance.

Everything happens in one transaction that commits only after the publish succeeded: a failed publish
rolls back and the slots stay due for the next tick. A duplicate publish (commit failing after it) is
harmless, the run's unique (automation, scheduled_for) makes the second delivery a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Row, bindparam, exists, func, select, update

from models.automation import ACTIVE
from models.base import utcnow
from models.run import RunStatus, Trigger
from models.scheduling import Scheduled, next_run_at, schedule_of, slot_of
from models.tables import AUTOMATIONS, RUNS
from tasks import metrics
from tasks.message import RunCall
from tasks.run_record import insert_if_absent
from worker.beat import catch_up
from worker.beat.publish import Publisher

log = logging.getLogger(__name__)

DUE_COLUMNS = ("id", "uuid", "code", "status", "schedule", "jitter_s", "check_on_minutes", "next_run_at")
MAX_MISSED_ROWS = 100  # `missed` runs recorded per automation per tick


@dataclass(frozen=True)
class DueOutcome:
    """What one automation's due slot became: a run to publish (or not), run rows, its next dispatch."""

    row: Row[Any]
    decision: catch_up.Decision
    next_at: datetime | None


@dataclass(frozen=True)
class BatchResult:
    """Counts of one batch, for logs and tests."""

    selected: int
    dispatched: int
    missed: int


class Dispatcher:
    """Reads due automations in bounded batches and dispatches them; holds no copy of any automation."""

    def __init__(self, engine: Engine, publisher: Publisher, batch_size: int, grace_s: int) -> None:
        self.engine = engine
        self.publisher = publisher
        self.batch_size = batch_size
        self.grace_s = grace_s
        self.skip_locked = engine.dialect.name == "postgresql"

    def earliest(self) -> datetime | None:
        """The earliest next_run_at of an ACTIVE automation (one index lookup), None when there is none."""
        query = select(func.min(AUTOMATIONS.c.next_run_at)).where(AUTOMATIONS.c.status == ACTIVE)
        with self.engine.connect() as conn:
            return cast(datetime | None, conn.execute(query).scalar())

    def dispatch_batch(self, now: datetime) -> BatchResult:
        """Dispatch up to batch_size due automations in one transaction; commit after the publish."""
        with self.engine.begin() as conn:
            rows = conn.execute(self._due_query(now)).all()
            if not rows:
                return BatchResult(0, 0, 0)
            try:
                result = self._dispatch_rows(conn, rows, now)
            except Exception:
                log.error("beat: batch of %d due automations failed, rolled back (first %s, last %s)",
                          len(rows), rows[0].uuid, rows[-1].uuid)
                raise
        if result.missed:  # committed: the `missed` runs count in runs_total like any finished run
            metrics.count_runs({(RunStatus.MISSED, Trigger.SCHEDULE): result.missed})
        return result

    def resend_unstarted(self, now: datetime) -> int:
        """Send again each automation's last slot (within the grace window) that never started; how many.

        After Redis lost its data the message is gone, but last_run_at still says which slot it was.
        """
        since, after_id, sent = now - timedelta(seconds=self.grace_s), 0, 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(self._unstarted_query(since, after_id)).all()
            if rows:
                self.publisher.publish([(r.uuid, r.last_run_at.isoformat()) for r in rows])
                sent, after_id = sent + len(rows), rows[-1].id
            if len(rows) < self.batch_size:
                return sent

    def _unstarted_query(self, since: datetime, after_id: int) -> Any:
        """ACTIVE automations whose last_run_at slot has no run, or only a queued one; keyset by id."""
        a, r = AUTOMATIONS.c, RUNS.c
        started = select(r.id).where(r.automation_id == a.id, r.scheduled_for == a.last_run_at,
                                     r.status != RunStatus.QUEUED)
        return (select(a.id, a.uuid, a.last_run_at)
                .where(a.status == ACTIVE, a.last_run_at >= since, a.id > after_id, ~exists(started))
                .order_by(a.id).limit(self.batch_size))

    def _due_query(self, now: datetime) -> Any:
        """status = ACTIVE AND next_run_at <= now ORDER BY next_run_at LIMIT n (SKIP LOCKED on PostgreSQL)."""
        c = AUTOMATIONS.c
        query = (select(*(c[name] for name in DUE_COLUMNS))
                 .where(c.status == ACTIVE, c.next_run_at <= now)
                 .order_by(c.next_run_at).limit(self.batch_size))
        return query.with_for_update(skip_locked=True) if self.skip_locked else query

    def _dispatch_rows(self, conn: Connection, rows: Sequence[Row[Any]], now: datetime) -> BatchResult:
        """Plan every row, write the run rows and the advance, then publish (the commit follows)."""
        outcomes = [self._outcome(row, now) for row in rows]
        run_rows = [r for o in outcomes for r in _run_rows(o, now)]
        if run_rows:
            insert_if_absent(conn, run_rows, returning=False)
        conn.execute(_advance(conn.dialect.name), [_advance_params(o) for o in outcomes])
        calls: list[RunCall] = [
            (o.row.uuid, o.decision.run_slot.isoformat(), o.row.code) for o in outcomes
            if o.decision.run_slot is not None
        ]
        if calls:
            self.publisher.publish(calls)
        missed = sum(len(o.decision.missed) for o in outcomes)
        if missed:
            log.warning("beat: recorded %d missed slot(s) across %d automation(s)", missed, len(outcomes))
        return BatchResult(len(rows), len(calls), missed)

    def _outcome(self, row: Row[Any], now: datetime) -> DueOutcome:
        """The decision for one due row; a row whose schedule cannot be read is put off, not retried each
        tick."""
        auto: Scheduled = row  # the due row carries the columns a schedule is read from
        try:
            slot = slot_of(auto, row.next_run_at)
            following = next_run_at(auto, slot)
            horizon = now - (row.next_run_at - slot)
            if following is not None and following > now:
                return DueOutcome(row, catch_up.single(slot, horizon, self.grace_s), following)
            decision = catch_up.decide(schedule_of(auto), slot, horizon, self.grace_s, MAX_MISSED_ROWS)
            return DueOutcome(row, decision, next_run_at(auto, decision.resume_after))
        except Exception:
            retry_at = now + timedelta(minutes=max(1, int(row.check_on_minutes or 1)))
            log.exception("beat: automation %s: unreadable schedule; next try at %s", row.uuid, retry_at)
            return DueOutcome(row, catch_up.Decision(None, Trigger.SCHEDULE, resume_after=now), retry_at)


def _run_rows(outcome: DueOutcome, now: datetime) -> list[dict[str, Any]]:
    """The `missed` runs and the `catch_up` run (queued, so the run task finds its trigger) to insert."""
    automation_id = outcome.row.id
    rows = [
        {"automation_id": automation_id, "scheduled_for": m.slot, "trigger": Trigger.SCHEDULE,
         "status": RunStatus.MISSED, "reason": m.reason, "finished_at": now}
        for m in outcome.decision.missed
    ]
    decision = outcome.decision
    if decision.trigger == Trigger.CATCH_UP and decision.run_slot is not None:
        rows.append({"automation_id": automation_id, "scheduled_for": decision.run_slot,
                     "trigger": Trigger.CATCH_UP, "status": RunStatus.QUEUED, "reason": decision.reason,
                     "finished_at": None})
    return rows


@cache
def _advance(dialect: str) -> Any:
    """The guarded advance: only if the automation is still ACTIVE and its next_run_at is what we read
    (built once per dialect, not once per batch).

    On SQLite the guard compares instants (julianday), not text, so a row whose datetime was written in
    another text form (by hand, without fractional seconds) still advances instead of being re-sent
    every tick.
    """
    col = AUTOMATIONS.c.next_run_at
    old = bindparam("b_old", type_=col.type)
    same = func.julianday(col) == func.julianday(old) if dialect == "sqlite" else col == old
    return (
        update(AUTOMATIONS)
        .where(AUTOMATIONS.c.id == bindparam("b_id"), AUTOMATIONS.c.status == ACTIVE, same)
        .values(next_run_at=bindparam("b_next", type_=col.type),
                last_run_at=func.coalesce(bindparam("b_last", type_=AUTOMATIONS.c.last_run_at.type),
                                          AUTOMATIONS.c.last_run_at),
                # the oldest dispatched slot no run has ended for (an automation's health: models/health.py)
                awaiting_slot=func.coalesce(AUTOMATIONS.c.awaiting_slot,
                                            bindparam("b_last", type_=AUTOMATIONS.c.awaiting_slot.type)),
                updated_at=AUTOMATIONS.c.updated_at)
    )


def _advance_params(outcome: DueOutcome) -> dict[str, Any]:
    """Parameters of the guarded advance: only if nobody changed next_run_at since we read it."""
    return {"b_id": outcome.row.id, "b_old": outcome.row.next_run_at, "b_next": outcome.next_at,
            "b_last": outcome.decision.run_slot}


def now_utc() -> datetime:
    """Beat's clock (aware UTC), a seam for tests."""
    return utcnow()
