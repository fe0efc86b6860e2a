"""Manual runs ("trigger now") and the run history."""

from __future__ import annotations

import logging
from datetime import datetime

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from models.automation import Automation
from models.base import utcnow
from models.errors import EnqueueError
from models.run import Run
from models.store.listing import Page, PageRequest, check_filter, paginate
from models.store.lookup import get_automation, get_connection
from tasks.enqueue import enqueue_run
from tasks.run_record import fail_unqueued, record_manual

log = logging.getLogger(__name__)

SORTABLE = {
    "scheduled_for": Run.scheduled_for, "created_at": Run.created_at, "started_at": Run.started_at,
    "finished_at": Run.finished_at, "status": Run.status,
}


def queue_manual_run(session: Session, connection_uuid: str, automation_uuid: str,
                     now: datetime | None = None) -> tuple[Run, Automation]:
    """Record a queued manual run for now; a paused automation still gets one (the worker skips it)."""
    connection = get_connection(session, connection_uuid)
    automation = get_automation(session, connection, automation_uuid)
    return record_manual(session, automation.id, now or utcnow()), automation


def dispatch_run(session: Session, run: Run, automation: Automation, client: redis.Redis) -> None:
    """Commit the queued run, then enqueue it on `client` (short timeouts: a dead Redis fails fast); on
    failure record the run failed and raise EnqueueError."""
    session.commit()
    try:
        enqueue_run(automation.uuid, run.scheduled_for, client, label=automation.code)
    except Exception as exc:  # any broker failure means the same to the caller
        log.warning("could not enqueue run %s of automation %s: %s", run.uuid, automation.uuid,
                    type(exc).__name__)
        fail_unqueued(session, run, f"could not be queued: {type(exc).__name__}")
        session.commit()
        raise EnqueueError("the run could not be queued: the broker (Redis) is unavailable") from exc
    log.info("queued manual run %s of automation %s", run.uuid, automation.uuid)


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
