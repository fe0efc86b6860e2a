"""Find rows by their public UUID under their parent, or raise NotFoundError (404)."""

from __future__ import annotations

import uuid as uuid_lib

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.connection import Connection
from models.errors import NotFoundError
from models.partner_function import PartnerFunction
from models.run import Run


def is_uuid(value: str) -> bool:
    """Whether a path segment can be one of our UUIDs (anything else is a 404 without a query)."""
    try:
        return str(uuid_lib.UUID(value)) == value.lower() and len(value) == 36
    except (ValueError, AttributeError, TypeError):
        return False


def get_connection(session: Session, connection_uuid: str) -> Connection:
    """The connection, or 404 naming connection_uuid."""
    row = session.scalar(select(Connection).where(Connection.uuid == connection_uuid.lower())) if is_uuid(
        connection_uuid
    ) else None
    if row is None:
        raise NotFoundError("connection_uuid", f"no integration connection {connection_uuid}")
    return row


def get_partner_function(session: Session, connection: Connection, pf_uuid: str) -> PartnerFunction:
    """A partner function of this connection, or 404 naming partner_function_uuid."""
    row = None
    if is_uuid(pf_uuid):
        row = session.scalar(
            select(PartnerFunction).where(
                PartnerFunction.connection_id == connection.id, PartnerFunction.uuid == pf_uuid.lower()
            )
        )
    if row is None:
        raise NotFoundError("partner_function_uuid", f"no partner function {pf_uuid} on this connection")
    return row


def get_automation(session: Session, connection: Connection, automation_uuid: str) -> Automation:
    """An automation of this connection, or 404 naming automation_uuid."""
    row = None
    if is_uuid(automation_uuid):
        row = session.scalar(
            select(Automation).where(
                Automation.connection_id == connection.id, Automation.uuid == automation_uuid.lower()
            )
        )
    if row is None:
        raise NotFoundError("automation_uuid", f"no automation {automation_uuid} on this connection")
    return row


def get_run(session: Session, run_uuid: str) -> Run:
    """A run by its UUID, or 404 naming run_uuid."""
    row = session.scalar(select(Run).where(Run.uuid == run_uuid.lower())) if is_uuid(run_uuid) else None
    if row is None:
        raise NotFoundError("run_uuid", f"no run {run_uuid}")
    return row
