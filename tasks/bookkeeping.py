"""The run's rows: recorded once per slot, claimed atomically, progress and outcome written back.

Every function is one short transaction; a run never holds a database session while calling HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from models.automation import Automation
from models.base import new_uuid, utcnow
from models.db import session_scope
from models.logging_setup import redact
from models.run import FINISHED, Run
from tasks.context import RunContext, build_context
from tasks.resilience import once_more_on_disconnect

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunState:
    """The run row as the task needs it."""

    id: int
    uuid: str
    scheduled_for: datetime
    status: str
    reason: str | None
    attempts: int
    chain_depth: int
    parent_run_uuid: str | None
    plan: dict[str, Any] | None
    batches_sent: int
    records_fetched: int
    records_matched: int
    records_sent: int
    duration_ms: int | None
    error: str | None
    started_at: datetime | None = None
    trigger: str | None = None
    budget_wait_ms: int = 0
    throttled: int = 0
    resume_at: datetime | None = None

    #: The run columns a RunState is made of (what the lean writes return).
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id", "uuid", "scheduled_for", "status", "reason", "attempts", "chain_depth", "parent_run_uuid",
        "plan", "batches_sent", "records_fetched", "records_matched", "records_sent", "duration_ms", "error",
        "started_at", "trigger", "budget_wait_ms", "throttled", "resume_at")

    @classmethod
    def of(cls, run: Any) -> RunState:
        """Copy the values of a Run object or of a row with the COLUMNS."""
        return cls(run.id, run.uuid, run.scheduled_for, run.status, run.reason, run.attempts, run.chain_depth,
                   run.parent_run_uuid, run.plan, run.batches_sent or 0, run.records_fetched,
                   run.records_matched, run.records_sent, run.duration_ms, run.error, run.started_at,
                   run.trigger, run.budget_wait_ms or 0, run.throttled or 0, run.resume_at)

    @property
    def finished(self) -> bool:
        """Whether the run reached a final status."""
        return self.status in FINISHED

    def final_reason(self, reason: str | None) -> str | None:
        """The reason to record at the end: a catch-up run keeps the slots it stands for in front."""
        return with_coalescing(self.trigger, self.reason, reason)


#: How beat's reason on a `catch_up` run begins (worker/catch_up.py): it is kept when the run finishes.
COALESCED_PREFIX = "catch-up after downtime:"


def with_coalescing(trigger: str | None, previous: str | None, reason: str | None) -> str | None:
    """`<coalescing reason>; <reason>` on a catch-up run, so its outcome does not hide which slots it
    stands for; any other run's reason is just `reason`."""
    if trigger != "catch_up" or not previous or not previous.startswith(COALESCED_PREFIX):
        return reason
    if reason and reason.startswith(COALESCED_PREFIX):
        return reason  # already combined
    coalesced = previous.split("; ", 1)[0]
    return f"{coalesced}; {reason}" if reason else coalesced


def load_automation(db: Session, automation_uuid: str) -> Automation | None:
    """The automation with its connection and partner function, in one query."""
    stmt = (select(Automation).where(Automation.uuid == automation_uuid)
            .options(joinedload(Automation.connection), joinedload(Automation.partner_function)))
    return db.scalars(stmt).first()


def record_run(db: Session, automation_id: int, slot: datetime) -> Run:
    """The slot's run row: inserted if absent (a duplicate delivery finds the existing one)."""
    values = {"uuid": new_uuid(), "automation_id": automation_id, "scheduled_for": slot,
              "trigger": "schedule", "status": "queued"}
    dialect = db.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert(Run) if dialect == "postgresql" else sqlite.insert(Run)
        db.execute(insert.values(**values)
                   .on_conflict_do_nothing(index_elements=["automation_id", "scheduled_for"]))
    else:
        _insert_in_savepoint(db, values)
    return db.scalars(select(Run).where(Run.automation_id == automation_id, Run.scheduled_for == slot)).one()


def _insert_in_savepoint(db: Session, values: dict[str, Any]) -> None:
    """Insert-if-absent on other dialects: a savepoint absorbs the unique violation."""
    try:
        with db.begin_nested():
            db.add(Run(**values))
    except IntegrityError:
        pass


@dataclass(frozen=True)
class Start:
    """What the start of a run found: the context (None if the automation is gone) and the run."""

    context: RunContext | None
    run: RunState | None
    claimed: bool


@once_more_on_disconnect
def start(automation_uuid: str, slot: datetime, claim: bool, skip_reason: str | None = None) -> Start:
    """Record the run; then claim it (status running, attempts + 1), or skip it with a reason."""
    with session_scope() as db:
        auto = load_automation(db, automation_uuid)
        if auto is None:
            return Start(None, None, False)
        ctx = build_context(auto)
        run = record_run(db, auto.id, slot)
        if run.status in FINISHED:
            return Start(ctx, RunState.of(run), False)
        reason = skip_reason or (ctx.skip_reason if claim else None)
        if reason:
            _finish_row(run, "skipped", reason)
        elif claim:
            run.status, run.attempts = "running", (run.attempts or 0) + 1
            run.started_at = run.started_at or utcnow()
        db.flush()
        return Start(ctx, RunState.of(run), claim and not reason)


@once_more_on_disconnect
def batch_sent(run_id: int, batches_sent: int, records: int) -> None:
    """The partner acknowledged one more batch (guarded, so a statement retried after a lost reply
    does not count the batch twice)."""
    with session_scope() as db:
        db.execute(update(Run).where(Run.id == run_id, Run.batches_sent < batches_sent).values(
            batches_sent=batches_sent, records_sent=Run.records_sent + records))


@once_more_on_disconnect
def add_attempt(run_id: int) -> None:
    """One more try of an integration call (a retry)."""
    with session_scope() as db:
        db.execute(update(Run).where(Run.id == run_id).values(attempts=Run.attempts + 1))


def _finish_row(run: Run, status: str, reason: str | None, error: str | None = None) -> None:
    """Final status, reason, error and timings on the row."""
    now = utcnow()
    reason = with_coalescing(run.trigger, run.reason, reason)
    run.status, run.reason, run.error, run.finished_at = status, reason, error, now
    started = run.started_at or now
    run.started_at = started
    run.duration_ms = int((now - started).total_seconds() * 1000)


@once_more_on_disconnect
def set_reason(run_id: int, reason: str) -> None:
    """Add a note to a finished run (what happened to its chain); a catch-up run keeps its coalescing."""
    with session_scope() as db:
        run = db.get(Run, run_id)
        if run is not None:
            run.reason = with_coalescing(run.trigger, run.reason, reason)


def fail_unfinished(automation_uuid: str, slot: datetime, reason: str, error: str) -> None:
    """Best effort, when the task gives up: fail the slot's run if it is recorded, not finished and has no
    stored plan; a run with a plan is left `deferred` instead (it is completed as planned, by beat's resume
    sweep, since a batch of it may already be applied)."""
    try:
        with session_scope() as db:
            auto_id = select(Automation.id).where(Automation.uuid == automation_uuid).scalar_subquery()
            slot_run = and_(Run.automation_id == auto_id, Run.scheduled_for == slot,
                            Run.status.not_in(sorted(FINISHED)))
            db.execute(update(Run).where(slot_run, Run.plan.is_(None))
                       .values(status="failed", reason=redact(reason), error=redact(error),
                               finished_at=utcnow()))
            db.execute(update(Run).where(slot_run, Run.plan.is_not(None))
                       .values(status="deferred", reason=redact(f"{reason}; the run resumes with its plan"),
                               error=redact(error), resume_at=None))
    except Exception:
        log.exception("could not fail the run of automation %s slot %s", automation_uuid, slot.isoformat())
