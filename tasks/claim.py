"""The run's rows on its hot path: one read before the fetch, then one write that records and claims the
run together with its plan (or its outcome, when nothing is to be sent), and one write for the outcome.

The run lock is held throughout, so nothing else claims the slot meanwhile; still, every write is guarded
(insert-if-absent on the unique (automation, scheduled_for), claim only while not finished), so a slot
finished elsewhere is never run again. Core statements with RETURNING: one round trip per write, no ORM
unit of work. A run that retries or needs more than one page is claimed at once, so a slow run shows as
`running` while it fetches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, select, update
from sqlalchemy.engine import Connection as DBConnection
from sqlalchemy.orm import joinedload

from models.automation import Automation
from models.base import new_uuid, utcnow
from models.db import connection_scope, session_scope
from models.run import FINISHED, Run
from tasks import bookkeeping
from tasks.bookkeeping import RunState
from tasks.context import RunContext, build_context
from tasks.selection import Watermark

_RUNS = Run.__table__
_AUTOMATIONS = Automation.__table__
_STATE = [_RUNS.c[name] for name in RunState.COLUMNS]
_FINISHED = sorted(FINISHED)


@dataclass(frozen=True)
class Found:
    """What the run starts from: the context (None if the automation is gone) and the slot's run, if any."""

    context: RunContext | None
    run: RunState | None


def look_up(automation_uuid: str, slot: datetime) -> Found:
    """The automation, its connection and partner function, and the slot's run: one read-only query."""
    stmt = (select(Automation, Run)
            .outerjoin(Run, and_(Run.automation_id == Automation.id, Run.scheduled_for == slot))
            .where(Automation.uuid == automation_uuid)
            .options(joinedload(Automation.connection), joinedload(Automation.partner_function)))
    with session_scope() as db:
        row = db.execute(stmt).first()
        if row is None:
            return Found(None, None)
        auto, run = row
        return Found(build_context(auto), RunState.of(run) if run is not None else None)


@dataclass
class Claim:
    """A run being started: recorded and claimed in the same write as its plan or its outcome."""

    automation_id: int
    slot: datetime
    found: RunState | None
    started_at: datetime = field(default_factory=utcnow)
    state: RunState | None = None
    retries: int = 0

    @property
    def stored_plan(self) -> dict[str, Any] | None:
        """The plan a previous delivery saved (a redelivered run resends exactly it)."""
        run = self.state or self.found
        return run.plan if run is not None else None

    def retried(self, _exc: object = None) -> None:
        """A retry is one more attempt; before the claim it claims the run, so a slow run shows."""
        if self.state is not None:
            bookkeeping.add_attempt(self.state.id)
            return
        self.retries += 1
        self.claim()

    def next_page(self) -> None:
        """Fetching goes on for another page: claim now, so a long fetch shows as running."""
        if self.state is None:
            self.claim()

    def claim(self, plan: dict[str, Any] | None = None) -> RunState | None:
        """Record and claim the run (attempts + 1), saving `plan` with it; None if it finished elsewhere."""
        with connection_scope() as conn:
            if self.state is None:
                self.state = self._claim(conn, plan)
            elif plan is not None:
                self.state = _save_plan(conn, self.state.id, plan)
        return self.state

    def finish(self, status: str, reason: str | None = None, error: str | None = None,
               watermark: Watermark | None = None, sent_add: int = 0, **counts: int) -> RunState:
        """Write the outcome (claiming first in the same transaction if not yet claimed) and the watermark."""
        with connection_scope() as conn:
            if self.state is None:
                self.state = self._claim(conn, None)
                if self.state is None:
                    return self._read_finished(conn)
            row = _finish(conn, self.state, status, reason, error, sent_add, counts)
            if row is not None and watermark is not None:
                advance_watermark(conn, self.automation_id, watermark)
        if row is None:  # finished meanwhile by another delivery: the generic path keeps its semantics
            at = (self.automation_id, watermark) if watermark is not None else None
            return bookkeeping.finish(self.state.id, status, reason, error, at, sent_add, **counts)
        self.state = RunState.of(row)
        return self.state

    def _claim(self, conn: DBConnection, plan: dict[str, Any] | None) -> RunState | None:
        """Insert the run as running, or claim its row while not finished."""
        extra = _plan_values(plan)
        row = None
        if self.found is None:
            row = _insert_running(conn, self.automation_id, self.slot, self.started_at, 1 + self.retries,
                                  extra)
        if row is None:
            row = conn.execute(_CLAIM.values(**extra), {
                "b_automation_id": self.automation_id, "b_slot": self.slot, "add": 1 + self.retries,
                "started": self.started_at}).first()
        return RunState.of(row) if row is not None else None

    def finished_elsewhere(self) -> RunState:
        """The slot's run as another delivery finished it (nothing more is done with it here)."""
        with connection_scope() as conn:
            return self._read_finished(conn)

    def _read_finished(self, conn: DBConnection) -> RunState:
        """The slot's run as another delivery finished it."""
        row = conn.execute(select(*_STATE).where(_RUNS.c.automation_id == self.automation_id,
                                                 _RUNS.c.scheduled_for == self.slot)).one()
        self.state = RunState.of(row)
        return self.state


def _claim_statement() -> Any:
    """UPDATE ... claim the slot's unfinished run: running, attempts + n, started_at kept or set."""
    started = bindparam("started", type_=_RUNS.c.started_at.type)
    return (update(_RUNS)
            .where(_RUNS.c.automation_id == bindparam("b_automation_id"),
                   _RUNS.c.scheduled_for == bindparam("b_slot", type_=_RUNS.c.scheduled_for.type),
                   _RUNS.c.status.not_in(_FINISHED))
            .values(status="running", attempts=_RUNS.c.attempts + bindparam("add"),
                    started_at=func.coalesce(_RUNS.c.started_at, started))
            .returning(*_STATE))


_CLAIM = _claim_statement()


def _plan_values(plan: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a saved plan sets."""
    if plan is None:
        return {}
    return {"plan": plan, "records_fetched": plan["fetched"], "records_matched": plan["matched"]}


def _insert_running(conn: DBConnection, automation_id: int, slot: datetime, started: datetime, attempts: int,
                    extra: dict[str, Any]) -> Row[Any] | None:
    """Insert the slot's run as running; None when a row is already there (a concurrent delivery)."""
    values = {"uuid": new_uuid(), "automation_id": automation_id, "scheduled_for": slot,
              "trigger": "schedule", "status": "running", "attempts": attempts, "started_at": started,
              **extra}
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        return _insert_in_savepoint(conn, values)
    stmt = (insert(_RUNS).values(**values)
            .on_conflict_do_nothing(index_elements=["automation_id", "scheduled_for"]).returning(*_STATE))
    return conn.execute(stmt).first()


def _insert_in_savepoint(conn: DBConnection, values: dict[str, Any]) -> Row[Any] | None:
    """Insert-if-absent on other dialects: a savepoint absorbs the unique violation."""
    from sqlalchemy.exc import IntegrityError

    try:
        with conn.begin_nested():
            conn.execute(_RUNS.insert().values(**values))
    except IntegrityError:
        return None
    return conn.execute(select(*_STATE).where(_RUNS.c.uuid == values["uuid"])).one()


def _save_plan(conn: DBConnection, run_id: int, plan: dict[str, Any]) -> RunState:
    """Fix the batches on an already claimed run."""
    row = conn.execute(update(_RUNS).where(_RUNS.c.id == run_id).values(**_plan_values(plan))
                       .returning(*_STATE)).one()
    return RunState.of(row)


def _finish(conn: DBConnection, run: RunState, status: str, reason: str | None, error: str | None,
            sent_add: int, counts: dict[str, int]) -> Row[Any] | None:
    """Final status, reason, error, counts and timings; None if the run was already finished."""
    now = utcnow()
    started = run.started_at or now
    values = {"status": status, "reason": reason, "error": error, "finished_at": now, "started_at": started,
              "duration_ms": int((now - started).total_seconds() * 1000),
              "records_sent": _RUNS.c.records_sent + sent_add, **counts}
    stmt = (update(_RUNS).where(_RUNS.c.id == run.id, _RUNS.c.status.not_in(_FINISHED)).values(**values)
            .returning(*_STATE))
    return conn.execute(stmt).first()


def advance_watermark(conn: DBConnection, automation_id: int, mark: Watermark) -> None:
    """Move the watermark; updated_at is kept, as this is run state, not a definition change."""
    conn.execute(update(_AUTOMATIONS).where(_AUTOMATIONS.c.id == automation_id).values(
        watermark_at=mark.at, watermark_ids=sorted(mark.ids), updated_at=_AUTOMATIONS.c.updated_at))
