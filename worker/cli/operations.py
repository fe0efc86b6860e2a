"""What the command line's operator commands do: list, trigger, check, preview; printing is left to cli.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, selectinload

from models import migrate
from models.automation import Automation
from models.base import utcnow
from models.connection import Connection
from models.db import make_engine
from models.errors import DefinitionError, NotFoundError
from models.logging_setup import redact
from models.redis_clients import client_for
from models.run import Run
from models.schedule import parse_schedule
from models.settings import Settings
from models.store.listing import PageRequest
from models.store.lookup import get_connection, is_uuid
from tasks import manual_runs as run_service

CHECK_TIMEOUT_S = 3
#: parse_schedule's field names as the `schedule preview` options a user typed.
PREVIEW_OPTIONS = {"check_on": "CHECK_ON", "custom_day": "--day", "custom_time": "--time",
                   "time_zone": "--tz"}


def safe_url(url: str) -> str:
    """A database or Redis URL fit to print: any password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (redis://, unix://): mask by pattern
        return redact(url)


def find_automation(session: Session, ref: str, connection_uuid: str | None = None) -> Automation:
    """An automation by UUID, or by code (within `--connection` when codes repeat across connections)."""
    stmt = select(Automation).options(selectinload(Automation.connection))
    if connection_uuid:
        stmt = stmt.where(Automation.connection_id == get_connection(session, connection_uuid).id)
    text_ref = ref.strip()
    if is_uuid(text_ref):
        found = session.scalar(stmt.where(Automation.uuid == text_ref.lower()))
        if found is not None:
            return found
    matches = session.scalars(stmt.where(Automation.code == text_ref)).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError("AUTOMATION", f"no automation with UUID or code '{ref}'")
    where = ", ".join(sorted(a.connection.uuid for a in matches))
    raise DefinitionError("AUTOMATION", f"code '{ref}' is used on {len(matches)} connections ({where}); "
                                        "give the UUID or --connection")


def list_automations(session: Session, connection_uuid: str | None, status: str | None) -> list[Automation]:
    """Every automation (of one connection), oldest first, with its connection loaded."""
    stmt = select(Automation).options(selectinload(Automation.connection))
    if connection_uuid:
        stmt = stmt.where(Automation.connection_id == get_connection(session, connection_uuid).id)
    if status:
        stmt = stmt.where(Automation.status == status.strip().upper())
    return list(session.scalars(stmt.order_by(Automation.created_at, Automation.id)).all())


def list_runs(session: Session, automation: Automation, limit: int, status: str | None) -> list[Run]:
    """The automation's newest runs, through the API's own listing."""
    page, _ = run_service.list_runs(session, automation.connection.uuid, automation.uuid,
                                    PageRequest(limit=limit), status=status)
    return list(page.items)


def trigger(session: Session, automation: Automation, redis_url: str) -> Run:
    """Record a manual run and enqueue it, exactly as `POST .../run` does (Redis is pinged first)."""
    client = client_for(redis_url, CHECK_TIMEOUT_S, CHECK_TIMEOUT_S, decode=False)
    run, automation = run_service.queue_manual_run(session, automation.connection.uuid, automation.uuid)
    run_service.dispatch_run(session, run, automation, client)
    return run


def preview(check_on: str, day: str | None, time_of_day: str | None, tz: str | None, count: int,
            start: datetime | None, default_timezone: str) -> tuple[str, list[str]]:
    """(checkOnText, the next `count` fires as ISO 8601 in the zone), as if stored at `start` (or now)."""
    now = start or utcnow()
    try:
        schedule = parse_schedule(check_on, day, time_of_day, tz, now, default_timezone)
    except DefinitionError as exc:
        raise DefinitionError(PREVIEW_OPTIONS.get(exc.field, exc.field), exc.message) from None
    zone = ZoneInfo(schedule.time_zone)
    return schedule.text, [fire.astimezone(zone).isoformat() for fire in schedule.next_n(now, count)]


@dataclass(frozen=True)
class Check:
    """One line of `check`: what was checked, whether it is fine, and what was seen."""

    name: str
    ok: bool
    detail: str


def check_all(settings: Settings) -> list[Check]:
    """The database answers, its migrations are current, Redis answers."""
    return [_check_database(settings.database_url), _check_migrations(settings.database_url),
            _check_redis(settings.redis_url)]


def _check_database(url: str) -> Check:
    """SELECT 1 with a bounded connect timeout."""
    extra: dict[str, Any] = {} if url.startswith("sqlite") else {"connect_args": {"connect_timeout":
                                                                                  CHECK_TIMEOUT_S}}
    engine = make_engine(url, **extra)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return Check("database", True, safe_url(url))
    except Exception as exc:  # any failure means unreachable; the type names it without leaking the URL
        return Check("database", False, f"{safe_url(url)}: {type(exc).__name__}: {_first_line(exc)}")
    finally:
        engine.dispose()


def _check_migrations(url: str) -> Check:
    """The database's Alembic revision is the code's head."""
    try:
        current, head = migrate.current_heads(url)
    except Exception as exc:  # unreachable database: already reported above
        return Check("migrations", False, f"unknown ({type(exc).__name__})")
    if current == head:
        return Check("migrations", True, f"at head {head}")
    return Check("migrations", False, f"database at {current or 'no revision'}, code at {head}: "
                                      "run `automation-worker migrate`")


def _check_redis(url: str) -> Check:
    """PING with a bounded timeout."""
    try:
        client_for(url, CHECK_TIMEOUT_S, CHECK_TIMEOUT_S, decode=False).ping()
        return Check("redis", True, safe_url(url))
    except Exception as exc:  # any failure means unreachable
        return Check("redis", False, f"{safe_url(url)}: {type(exc).__name__}")


def _first_line(exc: BaseException) -> str:
    """The first line of an error message, redacted (drivers put URLs and DSNs in them)."""
    lines = str(exc).strip().splitlines()
    return redact(lines[0])[:200] if lines else ""


def find_connection_ref(session: Session, ref: str, provider: str | None = None) -> Connection:
    """A connection by UUID, or by remote_instance_id (with `provider` when that is on several)."""
    from models.providers import provider_code

    text_ref = ref.strip()
    if is_uuid(text_ref):
        found = session.scalar(select(Connection).where(Connection.uuid == text_ref.lower()))
        if found is not None:
            return found
    stmt = select(Connection).where(Connection.remote_instance_id == text_ref)
    if provider:
        stmt = stmt.where(Connection.provider == provider_code(provider))
    matches = session.scalars(stmt.order_by(Connection.id)).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DefinitionError("connection", f"no connection with UUID or remote_instance_id '{text_ref}'")
    providers = ", ".join(sorted({m.provider for m in matches}))
    raise DefinitionError("connection", f"remote_instance_id '{text_ref}' is on several connections "
                          f"({providers}): give --provider or the UUID")
