"""Factories that build valid definitions straight in the database (tests clean up via the `db` fixture)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models.automation import Automation
from models.base import utcnow
from models.connection import Connection
from models.partner_function import PartnerFunction
from models.settings import get_settings


def make_connection(db: Session, **fields: Any) -> Connection:
    """An ACTIVE connection with every credential set (encrypted with the test SECRET_KEY)."""
    secrets = {k: fields.pop(k) for k in ("client_secret", "access_token", "refresh_token", "user_password")
               if k in fields}
    conn = Connection(
        provider=fields.pop("provider", "SANDBOX"),
        provider_name=fields.pop("provider_name", "Sandbox"),
        remote_instance_id=fields.pop("remote_instance_id", "tenant-1"),
        api_domain=fields.pop("api_domain", "http://127.0.0.1:9"),
        token_type="Bearer",
        **fields,
    )
    key = get_settings().secret_key
    defaults = {"client_secret": "client-secret-1234", "access_token": "access-token-abcd",
                "refresh_token": "refresh-token-wxyz", "user_password": "Str0ngP@ssw0rd!"}
    for name, value in {**defaults, **secrets}.items():
        conn.set_secret(name, value, key)
    db.add(conn)
    db.flush()
    return conn


def make_partner_function(db: Session, connection: Connection, **fields: Any) -> PartnerFunction:
    """An enabled partner function on `connection`."""
    pf = PartnerFunction(connection_id=connection.id, name=fields.pop("name", "PartnerRole"),
                         direction=fields.pop("direction", "IMPORT"), **fields)
    db.add(pf)
    db.flush()
    return pf


def make_automation(db: Session, connection: Connection, partner_function: PartnerFunction | None = None,
                    *, next_run_at: datetime | None = None, **fields: Any) -> Automation:
    """An ACTIVE automation every 8 hours; the schedule is stored parsed, as the API stores it."""
    from models.schedule import parse_schedule

    now = utcnow()
    check_on = fields.pop("check_on", "8 hours")
    custom_day = fields.pop("custom_day", None)
    custom_time = fields.pop("custom_time", None)
    tz = fields.pop("time_zone", "UTC")
    schedule = parse_schedule(check_on, custom_day, custom_time, tz, now)
    auto = Automation(
        connection_id=connection.id,
        name=fields.pop("name", "Test auto"),
        code=fields.pop("code", "test"),
        applies_to=fields.pop("applies_to", "supplier"),
        check_on=check_on, custom_day=custom_day, custom_time=custom_time, time_zone=tz,
        schedule_kind=schedule.kind, schedule=schedule.to_dict(), check_on_minutes=schedule.check_on_minutes,
        perform_action=partner_function.uuid if partner_function else None,
        partner_function_id=partner_function.id if partner_function else None,
        next_run_at=next_run_at or schedule.next_fire_after(now),
        **fields,
    )
    db.add(auto)
    db.flush()
    return auto
