"""Find rows by their public UUID under their parent, or raise NotFoundError (404)."""

from __future__ import annotations

import uuid as uuid_lib
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.connection import Connection
from models.errors import NotFoundError
from models.partner_function import PartnerFunction
from models.run import Run

#: The rows that live under a connection and are looked up by UUID there.
Child = TypeVar("Child", PartnerFunction, Automation)


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
    field, noun = "partner_function_uuid", "partner function"
    return _child_of(session, PartnerFunction, connection, pf_uuid, field, noun)


def get_automation(session: Session, connection: Connection, automation_uuid: str) -> Automation:
    """An automation of this connection, or 404 naming automation_uuid."""
    return _child_of(session, Automation, connection, automation_uuid, "automation_uuid", "automation")


def _child_of(
    session: Session, model: type[Child], connection: Connection, uuid: str, field: str, noun: str
) -> Child:
    """The row of `model` with this UUID under the connection, or 404 naming `field`."""
    row = None
    if is_uuid(uuid):
        row = session.scalar(
            select(model).where(model.connection_id == connection.id, model.uuid == uuid.lower())
        )
    if row is None:
        raise NotFoundError(field, f"no {noun} {uuid} on this connection")
    return row


def get_run(session: Session, run_uuid: str) -> Run:
    """A run by its UUID, or 404 naming run_uuid."""
    row = session.scalar(select(Run).where(Run.uuid == run_uuid.lower())) if is_uuid(run_uuid) else None
    if row is None:
        raise NotFoundError("run_uuid", f"no run {run_uuid}")
    return row
