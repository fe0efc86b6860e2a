"""Manual runs ("trigger now") and the run history."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from api.services.listing import Page, PageRequest, check_filter, paginate
from api.services.lookup import get_automation, get_connection
from models.automation import Automation
from models.base import new_uuid, utcnow
from models.errors import AutomationWorkerError
from models.run import Run

log = logging.getLogger(__name__)

SORTABLE = {
    "scheduled_for": Run.scheduled_for, "created_at": Run.created_at, "started_at": Run.started_at,
    "finished_at": Run.finished_at, "status": Run.status,
}


class EnqueueError(AutomationWorkerError):
    """The run could not be put on the queue (Redis unreachable); answered with 503."""


def queue_manual_run(session: Session, connection_uuid: str, automation_uuid: str,
                     now: datetime | None = None) -> tuple[Run, Automation]:
    """Record a queued manual run for now; a paused automation still gets one (the worker skips it)."""
    connection = get_connection(session, connection_uuid)
    automation = get_automation(session, connection, automation_uuid)
    run = Run(uuid=new_uuid(), automation_id=automation.id, scheduled_for=now or utcnow(), trigger="manual",
              status="queued", records_fetched=0, records_matched=0, records_sent=0, attempts=0)
    session.add(run)
    session.flush()
    return run, automation


def dispatch_run(session: Session, run: Run, automation: Automation,
                 enqueue: Callable[[str, datetime], object]) -> None:
    """Commit the queued run, then enqueue it; on failure record the run failed and raise EnqueueError."""
    session.commit()
    try:
        enqueue(automation.uuid, run.scheduled_for)
    except Exception as exc:  # any broker failure means the same to the caller
        log.warning("could not enqueue run %s of automation %s: %s", run.uuid, automation.uuid,
                    type(exc).__name__)
        _fail(run, f"could not be queued: {type(exc).__name__}")
        session.commit()
        raise EnqueueError("the run could not be queued: the broker (Redis) is unavailable") from exc
    log.info("queued manual run %s of automation %s", run.uuid, automation.uuid)


def _fail(run: Run, reason: str) -> None:
    """Record a run that never reached a worker."""
    now = utcnow()
    run.status = "failed"
    run.reason = reason
    run.error = reason
    run.finished_at = now
    run.duration_ms = 0


def list_runs(session: Session, connection_uuid: str, automation_uuid: str, page: PageRequest, *,
              status: str | None = None, trigger: str | None = None) -> tuple[Page[Run], Automation]:
    """An automation's runs, newest first unless `sort` says otherwise."""
    connection = get_connection(session, connection_uuid)
    automation = get_automation(session, connection, automation_uuid)
    stmt = select(Run).where(Run.automation_id == automation.id)
    if check_filter(status, "status"):
        stmt = stmt.where(Run.status == str(status).strip().lower())
    if check_filter(trigger, "trigger"):
        stmt = stmt.where(Run.trigger == str(trigger).strip().lower())
    return paginate(session, stmt, page, SORTABLE, [Run.scheduled_for.desc(), Run.id.desc()]), automation


def list_all_runs(session: Session, page: PageRequest, *, status: str | None = None,
                  trigger: str | None = None) -> Page[Run]:
    """Every automation's runs (`GET /api/v3/runs?status=deferred`), newest first unless `sort` says
    otherwise; each run's automation is loaded with it."""
    stmt = select(Run).options(joinedload(Run.automation))
    if check_filter(status, "status"):
        stmt = stmt.where(Run.status == str(status).strip().lower())
    if check_filter(trigger, "trigger"):
        stmt = stmt.where(Run.trigger == str(trigger).strip().lower())
    return paginate(session, stmt, page, SORTABLE, [Run.scheduled_for.desc(), Run.id.desc()])
