"""Helpers of the run tests: records at known times, definitions pointed at the loopback server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from models.automation import Automation
from models.connection import Connection
from models.partner_function import PartnerFunction
from models.run import Run
from tests.support.factories import make_automation, make_connection, make_partner_function
from tests.support.integration_server import IntegrationServer

ACCESS_TOKEN = "access-token-abcd"
REFRESH_TOKEN = "refresh-token-wxyz"
T0 = datetime(2025, 1, 1, tzinfo=UTC)  # in the past: a watermark never passes a run's start

#: Fast retries and short timeouts: the retry tests take milliseconds, not minutes.
FAST = {"retry_attempts": 4, "retry_base_s": 0.01, "retry_cap_s": 0.05, "http_read_timeout_s": 0.5,
        "http_connect_timeout_s": 1.0, "invoke_batch_size": 2, "fetch_page_size": 3, "max_chain_depth": 5}


def record(rid: str | int, created: int, updated: int | None = None, **fields: Any) -> dict[str, Any]:
    """A record created `created` minutes after T0 and updated `updated` minutes after T0."""
    c = T0 + timedelta(minutes=created)
    u = T0 + timedelta(minutes=updated if updated is not None else created)
    return {"id": rid, "created_at": c.isoformat(), "updated_at": u.isoformat(), **fields}


def definitions(db: Session, srv: IntegrationServer, *, connection: Connection | None = None,
                pf: PartnerFunction | None = None, **fields: Any) -> Automation:
    """A committed automation (watermark T0) on a connection whose API is the loopback server."""
    conn = connection or make_connection(db, api_domain=srv.url, account_server=srv.url,
                                         access_token=ACCESS_TOKEN, refresh_token=REFRESH_TOKEN)
    pf = pf or make_partner_function(db, conn)
    fields.setdefault("watermark_at", T0 - timedelta(days=1))
    n = db.scalar(select(Automation.id).order_by(Automation.id.desc()).limit(1)) or 0
    fields.setdefault("code", f"auto-{n + 1}")
    fields.setdefault("name", f"Auto {n + 1}")
    auto = make_automation(db, conn, pf, **fields)
    db.commit()
    return auto


def run_of(db: Session, auto: Automation, slot: datetime | None = None) -> Run:
    """The automation's run for `slot` (its newest when None), as stored now."""
    db.expire_all()
    stmt = select(Run).where(Run.automation_id == auto.id)
    stmt = stmt.where(Run.scheduled_for == slot) if slot else stmt.order_by(Run.id.desc())
    return db.scalars(stmt.limit(1)).one()


def fresh(db: Session, obj: Any) -> Any:
    """The object re-read from the database."""
    db.expire_all()
    return db.get(type(obj), obj.id)


def slot(minutes: int = 0) -> datetime:
    """A slot some minutes after the current hour (distinct slots per call site)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(minutes=minutes)


def load_automation(db: Session, automation_uuid: str) -> Automation | None:
    """The automation with its connection and partner function, in one query."""
    stmt = (select(Automation).where(Automation.uuid == automation_uuid)
            .options(joinedload(Automation.connection), joinedload(Automation.partner_function)))
    return db.scalars(stmt).first()
