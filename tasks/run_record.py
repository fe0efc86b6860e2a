"""The run record: every read and write of a run row, and the watermark the run moves (one owner).

On the run's hot path: one read before the fetch, then one write that records and claims the run together
with its plan (or its outcome, when nothing is to be sent), and one write for the outcome. Beside it: the
run's progress (batches, attempts, notes), giving up, and the one insert-if-absent every run row goes
through (beat's scheduled, catch-up and missed rows, manual runs, chained runs).

The run lock is held throughout, so nothing else claims the slot meanwhile; still, every write is guarded
(insert-if-absent on the unique (automation, scheduled_for), claim only while not finished), so a slot
finished elsewhere is never run again. Core statements with RETURNING: one round trip per write, no ORM
unit of work. A run that retries or needs more than one page is claimed at once, so a slow run shows as
`running` while it fetches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Row, and_, bindparam, exists, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as DBConnection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from models.automation import Automation
from models.base import new_uuid, utcnow
from models.db import autocommit_scope, connection_scope, get_engine
from models.errors import ConflictError, PlanConflict
from models.logging_setup import redact
from models.notify import schedule_changed
from models.redis_clients import redis_client
from models.run import FINISHED, UNFINISHED_SQL, Run, RunStatus, Trigger
from models.tables import AUTOMATIONS, RUNS
from tasks import observe
from tasks.budget import Usage
from tasks.context import RunContext, build_context
from tasks.resilience import once_more_on_disconnect
from tasks.run_state import RunState, with_coalescing
from tasks.selection import Watermark

_STATE = [RUNS.c[name] for name in RunState.COLUMNS]
log = logging.getLogger(__name__)
_FINISHED = sorted(FINISHED)


@dataclass(frozen=True)
class Found:
    """What the run starts from: the context (None if the automation is gone), the slot's run, if any, and
    the slot of the automation's oldest other run that was claimed and never finished (it goes first)."""

    context: RunContext | None
    run: RunState | None
    unfinished_slot: datetime | None = None


@once_more_on_disconnect
def look_up(automation_uuid: str, slot: datetime) -> Found:
    """The automation, its connection and partner function, and the slot's run: one read-only query."""
    with autocommit_scope() as conn, Session(bind=conn, expire_on_commit=False) as db:  # one round trip
        row = db.execute(_look_up_statement(), {"b_uuid": automation_uuid, "b_slot": slot}).first()
        if row is None:
            return Found(None, None)
        auto, run, unfinished = row
        return Found(build_context(auto), RunState.of(run) if run is not None else None, unfinished)


@dataclass
class Claim:
    """A run being started: recorded and claimed in the same write as its plan or its outcome."""

    automation_id: int
    slot: datetime
    found: RunState | None
    started_at: datetime = field(default_factory=utcnow)
    state: RunState | None = None
    retries: int = 0
    usage: Usage = field(default_factory=Usage)  # the run's client's budget usage (set by perform)

    @property
    def stored_plan(self) -> dict[str, Any] | None:
        """The plan a previous delivery saved (a redelivered run resends exactly it)."""
        run = self.state or self.found
        return run.plan if run is not None else None

    def retried(self, _exc: object = None) -> None:
        """A retry is one more attempt; before the claim it claims the run, so a slow run shows."""
        if self.state is not None:
            add_attempt(self.state.id)
            return
        self.retries += 1
        self.claim()

    def next_page(self) -> None:
        """Fetching goes on for another page: claim now, so a long fetch shows as running."""
        if self.state is None:
            self.claim()

    @once_more_on_disconnect
    def claim(self, plan: dict[str, Any] | None = None) -> RunState | None:
        """Record and claim the run (attempts + 1), saving `plan` with it; None if it finished elsewhere.

        One plan per run: a plan is saved only where none is stored, on a run not finished. If another
        delivery stored one meanwhile (it held the lock we lost), PlanConflict: this delivery stops.
        """
        with autocommit_scope() as conn:  # one statement: its own transaction, one round trip
            if self.state is None:
                row = self._record(conn, {"status": RunStatus.RUNNING, **_plan_values(plan)})
            elif plan is not None:
                row = _save_plan(conn, self.state.id, plan)
            else:
                return self.state
            if row is None and plan is not None:
                row = _state_of(conn, self.automation_id, self.slot)
                if row is not None and row.status not in FINISHED:
                    raise PlanConflict(f"run {row.uuid}: another delivery stored its plan first")
                return None
            self.state = RunState.of(row) if row is not None else None
        return self.state

    @once_more_on_disconnect
    def finish(self, status: str, reason: str | None = None, error: str | None = None,
               watermark: Watermark | None = None, sent_add: int = 0, **counts: int) -> RunState:
        """Write the outcome (recording and claiming the run in the same statement if not done yet), and
        the watermark in the same transaction, only if this write finished the run.

        The watermark is compare-and-set: it moves only from where the run's plan started
        (`watermark.version`), only forward. A run finished meanwhile by another delivery is left as it
        is, its watermark untouched. Reason and error are redacted like log lines.
        """
        known = self.state or self.found
        reason = known.final_reason(reason) if known is not None else reason
        outcome = _outcome(status, _redacted(reason), _redacted(error), self._started(),
                           {**counts, **self._budget_columns()})
        moves = watermark is not None and watermark.at is not None
        if self.state is not None and moves and get_engine(None).dialect.name == "postgresql":
            assert watermark is not None
            with autocommit_scope() as conn:  # both updates in one statement: one round trip, atomic
                stmt, params = _finish_with_watermark(self.state.id, outcome, sent_add, self.automation_id,
                                                      watermark)
                row = conn.execute(stmt, params).first()
            if row is not None and not row.marked:
                _log_watermark_kept(self.automation_id, watermark)
        else:
            row = self._write_outcome(outcome, sent_add, watermark if moves else None)
        if row is not None:
            self.state = RunState.of(row)
            observe.run_ended(self.automation_id, self.slot, self.state, self.usage)
            return self.state
        return self.finished_elsewhere()

    @once_more_on_disconnect
    def defer(self, reason: str, error: str | None, resume_at: datetime | None = None) -> RunState:
        """Leave the run unfinished as `deferred` with why (claimed first if it was not yet): it is resumed
        with its plan, if it has one, at `resume_at` (None: at beat's next resume sweep)."""
        if self.state is None and self.claim() is None:
            return self.finished_elsewhere()
        assert self.state is not None
        with autocommit_scope() as conn:
            unfinished = and_(RUNS.c.id == self.state.id, RUNS.c.status.not_in(_FINISHED))
            row = conn.execute(update(RUNS).where(unfinished)
                               .values(status=RunStatus.DEFERRED, reason=_redacted(reason),
                                       error=_redacted(error), resume_at=resume_at, **self._budget_columns())
                               .returning(*_STATE)).first()
        if row is None:
            return self.finished_elsewhere()
        self.state = RunState.of(row)
        observe.run_ended(self.automation_id, self.slot, self.state, self.usage)
        if resume_at is not None:
            schedule_changed(redis_client())  # beat plans its next resume sweep for this resume_at
        return self.state

    def _budget_columns(self) -> dict[str, int]:
        """The run's budget wait and 429s: what earlier deliveries recorded plus this one's."""
        known = self.state or self.found
        wait_ms = (known.budget_wait_ms if known else 0) + int(self.usage.wait_s * 1000)
        throttled = (known.throttled if known else 0) + self.usage.throttled
        return {"budget_wait_ms": wait_ms, "throttled": throttled}

    def _write_outcome(self, outcome: dict[str, Any], sent_add: int,
                       watermark: Watermark | None) -> Row[Any] | None:
        """The outcome (recording the run in the same statement if needed), and the watermark with it."""
        with (connection_scope() if watermark is not None else autocommit_scope()) as conn:
            if self.state is None:
                row = self._record(conn, outcome)
            else:
                row = conn.execute(*_finish_statement(self.state.id, outcome, sent_add)).first()
            if row is not None and watermark is not None and not advance_watermark(
                    conn, self.automation_id, watermark):
                _log_watermark_kept(self.automation_id, watermark)
        return row

    @once_more_on_disconnect
    def skip(self, reason: str) -> RunState:
        """Record the run `skipped` with why (no attempt counted), unless it finished elsewhere."""
        known = self.state or self.found
        final = known.final_reason(reason) if known else reason
        outcome = _outcome(RunStatus.SKIPPED, _redacted(final), None, self._started(), {})
        with autocommit_scope() as conn:
            row = self._record(conn, outcome, attempt=False)
        if row is None:
            return self.finished_elsewhere()
        self.state = RunState.of(row)
        observe.run_ended(self.automation_id, self.slot, self.state)
        return self.state

    @once_more_on_disconnect
    def record_queued(self) -> RunState:
        """Record the slot's run as `queued` if absent (a delivery that found its slot's lock held)."""
        with autocommit_scope() as conn:
            rows = insert_if_absent(conn, [{"uuid": new_uuid(), "automation_id": self.automation_id,
                                            "scheduled_for": self.slot, "trigger": Trigger.SCHEDULE,
                                            "status": RunStatus.QUEUED}])
        return RunState.of(rows[0]) if rows else self.finished_elsewhere()

    @once_more_on_disconnect
    def finished_elsewhere(self) -> RunState:
        """The slot's run as another delivery finished it (nothing more is done with it here)."""
        with autocommit_scope() as conn:
            row = conn.execute(select(*_STATE).where(RUNS.c.automation_id == self.automation_id,
                                                     RUNS.c.scheduled_for == self.slot)).one()
        self.state = RunState.of(row)
        return self.state

    def _started(self) -> datetime:
        """When the run started: as recorded by a previous delivery, else when this one began."""
        run = self.state or self.found
        return run.started_at if run is not None and run.started_at is not None else self.started_at

    def _record(self, conn: DBConnection, values: dict[str, Any], attempt: bool = True) -> Row[Any] | None:
        """Insert the slot's run with `values`, or set them on its unfinished row; attempts + 1 either way
        (unless not an `attempt`: a run skipped or only noted).

        None when the run is already finished (by another delivery).
        """
        attempts = 1 + self.retries if attempt else 0
        if self.found is None:
            rows = insert_if_absent(conn, [{"uuid": new_uuid(), "automation_id": self.automation_id,
                                            "scheduled_for": self.slot, "trigger": Trigger.SCHEDULE,
                                            "started_at": self.started_at, "attempts": attempts, **values}])
            if rows:
                return rows[0]
        claimed = {k: v for k, v in values.items() if k != "started_at"}  # a recorded start is kept
        statement = _CLAIM_NO_PLAN if "plan" in claimed else _CLAIM
        return conn.execute(statement.values(**claimed), {
            "b_automation_id": self.automation_id, "b_slot": self.slot, "add": attempts,
            "started": self.started_at}).first()


def _claim_statement(without_plan: bool = False) -> Any:
    """UPDATE ... claim the slot's unfinished run: running, attempts + n, started_at kept or set (with
    `without_plan`, only while no plan is stored: the statement that saves one never replaces one)."""
    started = bindparam("started", type_=RUNS.c.started_at.type)
    plan_guard = [RUNS.c.plan.is_(None)] if without_plan else []
    return (update(RUNS)
            .where(RUNS.c.automation_id == bindparam("b_automation_id"),
                   RUNS.c.scheduled_for == bindparam("b_slot", type_=RUNS.c.scheduled_for.type),
                   RUNS.c.status.not_in(_FINISHED), *plan_guard)
            .values(status=RunStatus.RUNNING, attempts=RUNS.c.attempts + bindparam("add"),
                    started_at=func.coalesce(RUNS.c.started_at, started))
            .returning(*_STATE))


_CLAIM = _claim_statement()
_CLAIM_NO_PLAN = _claim_statement(without_plan=True)


@cache
def _look_up_statement() -> Any:
    """The automation (by :b_uuid) with its connection and partner function, its run of :b_slot, and the
    slot of its oldest other claimed, unfinished run (through the partial index ix_runs_unfinished)."""
    slot = bindparam("b_slot", type_=RUNS.c.scheduled_for.type)
    other = RUNS.alias("unfinished")
    unfinished = (select(other.c.scheduled_for)
                  .where(other.c.automation_id == Automation.id, text(f"unfinished.{UNFINISHED_SQL}"),
                         other.c.scheduled_for != slot)
                  .order_by(other.c.scheduled_for).limit(1).scalar_subquery())
    return (select(Automation, Run, unfinished)
            .outerjoin(Run, and_(Run.automation_id == Automation.id, Run.scheduled_for == slot))
            .where(Automation.uuid == bindparam("b_uuid"))
            .options(joinedload(Automation.connection), joinedload(Automation.partner_function)))


def _plan_values(plan: dict[str, Any] | None) -> dict[str, Any]:
    """The columns a saved plan sets."""
    if plan is None:
        return {}
    return {"plan": plan, "records_fetched": plan["fetched"], "records_matched": plan["matched"]}


def _outcome(status: str, reason: str | None, error: str | None, started: datetime,
             counts: dict[str, int]) -> dict[str, Any]:
    """The columns of a final status: reason, error, counts and timings."""
    now = utcnow()
    return {"status": status, "reason": reason, "error": error, "finished_at": now, "started_at": started,
            "duration_ms": int((now - started).total_seconds() * 1000), **counts}


def insert_if_absent(conn: DBConnection, rows: list[dict[str, Any]],
                     returning: bool = True) -> list[Row[Any]]:
    """Insert run rows; one whose (automation, scheduled_for) is taken is left alone (a concurrent delivery,
    a duplicate publish). With `returning`, the state of the rows inserted. Every run row is inserted here.
    """
    if not rows:
        return []
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        result = conn.execute(_insert_statement(name, returning), rows)
        return list(result.all()) if returning else []
    inserted = []  # other dialects: a savepoint per row absorbs the unique violation
    for values in rows:
        values = {"uuid": new_uuid(), **values}
        try:
            with conn.begin_nested():
                conn.execute(RUNS.insert().values(**values))
        except IntegrityError:
            continue
        if returning:
            inserted.append(conn.execute(select(*_STATE).where(RUNS.c.uuid == values["uuid"])).one())
    return inserted


@cache
def _insert_statement(dialect: str, returning: bool) -> Any:
    """INSERT ... ON CONFLICT (automation_id, scheduled_for) DO NOTHING [RETURNING the state]; the columns
    come from the parameters (built once: building a statement costs more than executing a cached one)."""
    insert = postgresql.insert(RUNS) if dialect == "postgresql" else sqlite.insert(RUNS)
    statement = insert.on_conflict_do_nothing(index_elements=["automation_id", "scheduled_for"])
    return statement.returning(*_STATE) if returning else statement


def _save_plan(conn: DBConnection, run_id: int, plan: dict[str, Any]) -> Row[Any] | None:
    """Fix the batches on an already claimed run: only where no plan is stored and the run is not
    finished; None otherwise."""
    return conn.execute(update(RUNS).where(RUNS.c.id == run_id, RUNS.c.plan.is_(None),
                                            RUNS.c.status.not_in(_FINISHED))
                        .values(**_plan_values(plan)).returning(*_STATE)).first()


def _state_of(conn: DBConnection, automation_id: int, slot: datetime) -> Row[Any] | None:
    """The slot's run as stored now."""
    return conn.execute(select(*_STATE).where(RUNS.c.automation_id == automation_id,
                                              RUNS.c.scheduled_for == slot)).first()


def _redacted(text: str | None) -> str | None:
    """A reason or error as it may be stored and shown (Flower, the API): credentials masked."""
    return redact(text) if text else text


def _log_watermark_kept(automation_id: int, mark: Watermark) -> None:
    """The compare-and-set found the watermark moved by someone else: it is kept, never moved back."""
    log.error("automation %s: watermark not moved to %s: it changed since this run's plan started "
              "(version %s); kept as stored", automation_id, mark.at.isoformat() if mark.at else None,
              mark.version)


def _finish_statement(run_id: int, outcome: dict[str, Any], sent_add: int) -> tuple[Any, dict[str, Any]]:
    """UPDATE the claimed run to its outcome while it is not finished, RETURNING its state; with its
    parameters."""
    return _finish_update(tuple(outcome)), _finish_params(run_id, outcome, sent_add)


def _finish_with_watermark(run_id: int, outcome: dict[str, Any], sent_add: int, automation_id: int,
                           mark: Watermark) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL: the outcome and, only if the run was updated, the watermark, in one statement
    (`WITH finished AS (UPDATE runs ... RETURNING ...), mark AS (UPDATE automations ...) SELECT ...`)."""
    params = {**_finish_params(run_id, outcome, sent_add), **_watermark_params(automation_id, mark)}
    return _finish_and_mark(tuple(outcome)), params


def _finish_params(run_id: int, outcome: dict[str, Any], sent_add: int) -> dict[str, Any]:
    """The bound values of a finishing update."""
    return {"b_run_id": run_id, "b_sent_add": sent_add, **{f"b_{k}": v for k, v in outcome.items()}}


@cache
def _finish_update(columns: tuple[str, ...]) -> Any:
    """The finishing UPDATE for an outcome setting `columns` (records_sent grows by :b_sent_add); built
    once per shape of outcome."""
    values: dict[str, Any] = {name: bindparam(f"b_{name}", type_=RUNS.c[name].type) for name in columns}
    values["records_sent"] = RUNS.c.records_sent + bindparam("b_sent_add")
    return (update(RUNS).where(RUNS.c.id == bindparam("b_run_id"), RUNS.c.status.not_in(_FINISHED))
            .values(**values).returning(*_STATE))


@cache
def _finish_and_mark(columns: tuple[str, ...]) -> Any:
    """The finishing UPDATE with the watermark's UPDATE in one statement, built once per shape."""
    finished = _finish_update(columns).cte("finished")
    moved = _ADVANCE.where(exists(select(finished.c.id))).returning(AUTOMATIONS.c.id).cte("mark")
    marked = select(func.count()).select_from(moved).scalar_subquery().label("marked")
    return select(*finished.c, marked).add_cte(moved)


def _advance_statement() -> Any:
    """UPDATE the watermark by compare-and-set: only from the version the plan started at (any version
    for a plan stored before versions existed), only forward; the version grows by one."""
    c = AUTOMATIONS.c
    at = bindparam("b_watermark_at", type_=c.watermark_at.type)
    version = bindparam("b_from_version", type_=c.watermark_version.type)
    return (update(AUTOMATIONS)
            .where(c.id == bindparam("b_automation_id"),
                   or_(version.is_(None), c.watermark_version == version),
                   or_(c.watermark_at.is_(None), c.watermark_at <= at))
            .values(watermark_at=at,
                    watermark_ids=bindparam("b_watermark_ids", type_=c.watermark_ids.type),
                    watermark_ahead=bindparam("b_watermark_ahead", type_=c.watermark_ahead.type),
                    watermark_version=c.watermark_version + 1, updated_at=c.updated_at))


_ADVANCE = _advance_statement()


def _watermark_params(automation_id: int, mark: Watermark) -> dict[str, Any]:
    """The bound values of the watermark's compare-and-set."""
    return {"b_automation_id": automation_id, "b_watermark_at": mark.at, "b_watermark_ids": sorted(mark.ids),
            "b_watermark_ahead": mark.ahead_json() or None, "b_from_version": mark.version}


def advance_watermark(conn: DBConnection, automation_id: int, mark: Watermark) -> bool:
    """Move the watermark by compare-and-set (updated_at is kept: run state, not a definition change);
    False when it had moved since the plan started, and is left as it is."""
    return conn.execute(_ADVANCE, _watermark_params(automation_id, mark)).rowcount == 1


def note(automation_uuid: str, slot: datetime, skip_reason: str | None = None) -> Found:
    """The slot's run without running it: recorded `queued` if absent, or with `skip_reason` finished
    `skipped` with why (a run already finished is left as it is)."""
    found = look_up(automation_uuid, slot)
    if skip_reason:
        return skip(found, slot, skip_reason)
    if found.context is None or found.run is not None:
        return found
    queued = Claim(found.context.automation_id, slot, None).record_queued()
    return Found(found.context, queued, found.unfinished_slot)


def skip(found: Found, slot: datetime, reason: str) -> Found:
    """The slot's run as `found` (read under the run lock) finished `skipped` with why, unless it is
    finished already or its automation is gone."""
    if found.context is None or (found.run is not None and found.run.finished):
        return found
    skipped = Claim(found.context.automation_id, slot, found.run).skip(reason)
    return Found(found.context, skipped, found.unfinished_slot)


@once_more_on_disconnect
def batch_sent(run_id: int, batches_sent: int, records: int) -> None:
    """The partner acknowledged one more batch (guarded, so a statement retried after a lost reply does
    not count the batch twice)."""
    with autocommit_scope() as conn:
        conn.execute(update(RUNS).where(RUNS.c.id == run_id, RUNS.c.batches_sent < batches_sent)
                     .values(batches_sent=batches_sent, records_sent=RUNS.c.records_sent + records))


@once_more_on_disconnect
def add_attempt(run_id: int) -> None:
    """One more try of an integration call (a retry)."""
    with autocommit_scope() as conn:
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(attempts=RUNS.c.attempts + 1))


@once_more_on_disconnect
def set_reason(run_id: int, reason: str) -> None:
    """Add a note to a finished run (what happened to its chain); a catch-up run keeps its coalescing."""
    with connection_scope() as conn:
        row = conn.execute(select(RUNS.c.trigger, RUNS.c.reason).where(RUNS.c.id == run_id)).first()
        if row is not None:
            conn.execute(update(RUNS).where(RUNS.c.id == run_id)
                         .values(reason=with_coalescing(row.trigger, row.reason, reason)))


def fail_unfinished(automation_uuid: str, slot: datetime, reason: str, error: str) -> None:
    """Best effort, when the task gives up: fail the slot's run if it is recorded, not finished and has no
    stored plan; a run with a plan is left `deferred` instead (it is completed as planned, by beat's resume
    sweep, since a batch of it may already be applied)."""
    try:
        with connection_scope() as conn:
            automation = AUTOMATIONS.c
            auto_id = select(automation.id).where(automation.uuid == automation_uuid).scalar_subquery()
            slot_run = and_(RUNS.c.automation_id == auto_id, RUNS.c.scheduled_for == slot,
                            RUNS.c.status.not_in(_FINISHED))
            failed = conn.execute(update(RUNS).where(slot_run, RUNS.c.plan.is_(None))
                                  .values(status=RunStatus.FAILED, reason=redact(reason), error=redact(error),
                                          finished_at=utcnow())
                                  .returning(RUNS.c.automation_id, *_STATE)).first()
            conn.execute(update(RUNS).where(slot_run, RUNS.c.plan.is_not(None))
                         .values(status=RunStatus.DEFERRED, error=redact(error), resume_at=None,
                                 reason=redact(f"{reason}; the run resumes with its plan")))
    except Exception:
        log.exception("could not fail the run of automation %s slot %s", automation_uuid, slot.isoformat())
        return
    if failed is None:
        return
    try:  # its automation shows failing, and the run counts in the metrics
        observe.run_ended(failed.automation_id, slot, RunState.of(failed))
    except Exception:
        log.exception("run of automation %s slot %s: failed, but its health was not updated", automation_uuid,
                      slot.isoformat())


def record_manual(db: Session, automation_id: int, now: datetime) -> Run:
    """A queued manual run for `now`, in the caller's transaction (the API's and the command line's)."""
    rows = insert_if_absent(db.connection(), [{"uuid": new_uuid(), "automation_id": automation_id,
                                               "scheduled_for": now, "trigger": Trigger.MANUAL,
                                               "status": RunStatus.QUEUED}])
    if not rows:
        raise ConflictError("run", "a run of this automation is already recorded for this instant; try again")
    return db.get_one(Run, rows[0].id)


def fail_unqueued(db: Session, run: Run, reason: str) -> None:
    """Record a run that never reached a worker (the broker refused it), in the caller's transaction."""
    db.execute(update(RUNS).where(RUNS.c.id == run.id)
               .values(status=RunStatus.FAILED, reason=reason, error=reason, finished_at=utcnow(),
                       duration_ms=0))
    db.expire(run)


def record_chained(db: Session, automation_id: int, slot: datetime, chain_depth: int,
                   parent_run_uuid: str) -> None:
    """The queued run a chain starts, in the caller's transaction (enqueued after its commit)."""
    insert_if_absent(db.connection(), [{"uuid": new_uuid(), "automation_id": automation_id,
                                        "scheduled_for": slot, "trigger": Trigger.CHAIN,
                                        "status": RunStatus.QUEUED, "chain_depth": chain_depth,
                                        "parent_run_uuid": parent_run_uuid}], returning=False)
