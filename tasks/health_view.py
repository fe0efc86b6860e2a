"""An automation's health as details and lists show it, and its recent past and near future.

The rule is models/health.py's; here the facts it needs beyond the row are gathered: why the automation is
disabled (tasks.context.skip_reason, the very reason its runs would be skipped), and, only for a row that
would be late, whether one of its runs is going.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session, object_session

from models.automation import ACTIVE, Automation
from models.base import utcnow
from models.connection import Connection
from models.health import Facts, health_of, overdue
from models.run import UNFINISHED_SQL
from models.settings import get_settings
from models.tables import RUNS
from tasks.context import skip_reason

RECENT_RUNS = 10
NEXT_RUNS = 5
R = RUNS.c


def health(automation: Automation, connection: Connection, now: datetime | None = None) -> dict[str, Any]:
    """The `health` object of one automation."""
    now, late_after_s = now or utcnow(), get_settings().late_after_s
    known = facts(automation, connection, now, late_after_s)
    return health_of(automation, known, now, late_after_s).to_dict()


def facts(automation: Automation, connection: Connection, now: datetime, late_after_s: float) -> Facts:
    """Disabled (and since when), and running (asked only when the row is overdue: one indexed lookup)."""
    if automation.status != ACTIVE:
        return Facts()
    reason = skip_reason(automation, connection, automation.partner_function)
    if reason:
        pf = automation.partner_function
        since = pf.updated_at if pf is not None and pf.enabled and connection.is_active else None
        return Facts(reason, since or connection.updated_at)
    if overdue(automation, now, late_after_s) is None:
        return Facts()
    session = object_session(automation)
    running = session is not None and bool(session.scalar(select(exists(select(R.id).where(
        R.automation_id == automation.id, text(f"runs.{UNFINISHED_SQL}"))))))
    return Facts(running=running)


def recent_runs(session: Session, automation: Automation) -> list[dict[str, Any]]:
    """The last RECENT_RUNS runs by slot (the unique (automation, slot) index, backwards)."""
    rows = session.execute(select(R.uuid, R.scheduled_for, R.started_at, R.status, R.trigger)
                           .where(R.automation_id == automation.id)
                           .order_by(R.scheduled_for.desc()).limit(RECENT_RUNS))
    return [{"uuid": r.uuid, "scheduled_for": r.scheduled_for.isoformat(),
             "started_at": r.started_at.isoformat() if r.started_at else None, "status": r.status,
             "trigger": r.trigger, "drift_s": _drift(r.scheduled_for, r.started_at)} for r in rows]


def counts_24h(session: Session, automation: Automation, now: datetime | None = None) -> dict[str, int]:
    """Runs per status whose slot falls in the last 24 hours."""
    since = (now or utcnow()) - timedelta(hours=24)
    rows = session.execute(select(R.status, func.count()).where(R.automation_id == automation.id,
                                                                R.scheduled_for >= since)
                           .group_by(R.status))
    return {status: n for status, n in rows}


def _drift(slot: datetime, started: datetime | None) -> float | None:
    """Start − slot in seconds (negative for a run triggered before its slot)."""
    return round((started - slot).total_seconds(), 3) if started is not None else None
