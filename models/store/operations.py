"""What an operator does to an automation: details, list, pause, resume, delete, preview the schedule."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from models.automation import ACTIVE, PAUSED, Automation
from models.base import utcnow
from models.connection import Connection
from models.errors import DefinitionError
from models.health import off_now, parse_states, states_clause
from models.scheduling import next_run_at, schedule_of
from models.settings import get_settings
from models.store.listing import Page, PageRequest, check_filter, paginate
from models.store.lookup import get_automation, get_connection

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": Automation.created_at, "updated_at": Automation.updated_at, "name": Automation.name,
    "code": Automation.code, "status": Automation.status, "next_run_at": Automation.next_run_at,
}
MAX_PREVIEW = 100
MAX_HEALTH_FILTER = 80  # characters of `?health=` (every state once, comma-separated, fits)


def automation_details(session: Session, connection_uuid: str,
                       automation_uuid: str) -> tuple[Automation, Connection]:
    """One automation of the connection."""
    connection = get_connection(session, connection_uuid)
    return get_automation(session, connection, automation_uuid), connection


def list_automations(session: Session, connection_uuid: str, page: PageRequest, *, status: str | None = None,
                     direction: str | None = None, applies_to: str | None = None, health: str | None = None
                     ) -> tuple[Page[Automation], Connection]:
    """A connection's automations filtered by status, direction, applies_to and health states; oldest first
    by default."""
    connection = get_connection(session, connection_uuid)
    stmt = select(Automation).where(Automation.connection_id == connection.id)
    states = _health_states(health)
    if states:
        stmt = stmt.where(states_clause(states, utcnow(), get_settings().late_after_s, off_now(session)))
    if check_filter(status, "status"):
        stmt = stmt.where(Automation.status == str(status).strip().upper())
    if check_filter(direction, "direction"):
        stmt = stmt.where(Automation.direction == str(direction).strip().upper())
    if check_filter(applies_to, "applies_to"):
        stmt = stmt.where(Automation.applies_to == applies_to)
    default = [Automation.created_at.asc(), Automation.id.asc()]
    page_ = paginate(session, stmt, page, SORTABLE, default, [selectinload(Automation.partner_function)])
    return page_, connection


def _health_states(value: str | None) -> list[str] | None:
    """`?health=late,failing` as states; 422 naming `health` for an unknown one."""
    if value is not None and len(value) > MAX_HEALTH_FILTER:
        raise DefinitionError("health", f"must be at most {MAX_HEALTH_FILTER} characters")
    try:
        return parse_states(check_filter(value, "health"))
    except ValueError as exc:
        raise DefinitionError("health", str(exc)) from exc


def pause(session: Session, connection_uuid: str, automation_uuid: str,
          comment: str | None) -> tuple[Automation, Connection]:
    """PAUSED with the operator's comment; beat no longer sees it (next_run_at cleared)."""
    automation, connection = automation_details(session, connection_uuid, automation_uuid)
    automation.status = PAUSED
    automation.status_comment = comment
    automation.next_run_at = None
    session.flush()
    log.info("paused automation %s", automation.uuid)
    return automation, connection


def resume(session: Session, connection_uuid: str, automation_uuid: str,
           now: datetime | None = None) -> tuple[Automation, Connection]:
    """ACTIVE again, next due at its schedule's first slot after now (missed slots are not replayed)."""
    automation, connection = automation_details(session, connection_uuid, automation_uuid)
    automation.status = ACTIVE
    automation.status_comment = None
    automation.next_run_at = next_run_at(automation, now or utcnow())
    automation.awaiting_slot = None  # slots dispatched before the pause do not make it late
    session.flush()
    log.info("resumed automation %s, next run %s", automation.uuid, automation.next_run_at)
    return automation, connection


def delete_automation(session: Session, connection_uuid: str, automation_uuid: str) -> str:
    """Delete the automation and its runs; a queued run task then finds nothing and stops."""
    automation, _ = automation_details(session, connection_uuid, automation_uuid)
    session.delete(automation)
    session.flush()
    log.info("deleted automation %s", automation_uuid)
    return "Automation has been deleted successfully"


def preview(automation: Automation, count: int, now: datetime | None = None) -> list[str]:
    """The next `count` slots of the schedule from now, in the automation's zone with its offset."""
    zone = ZoneInfo(automation.time_zone)
    fires = schedule_of(automation).next_n(now or utcnow(), min(max(count, 0), MAX_PREVIEW))
    return [fire.astimezone(zone).isoformat() for fire in fires]
