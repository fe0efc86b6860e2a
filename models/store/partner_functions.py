"""Partner functions: create (enabled), update the fields sent, enable, disable, list."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import new_uuid, utcnow
from models.connection import Connection
from models.errors import DefinitionError
from models.partner_function import PartnerFunction
from models.schemas.partner_functions import PartnerFunctionCreate, PartnerFunctionUpdate
from models.store.listing import Page, PageRequest, check_filter, paginate
from models.store.lookup import get_connection, get_partner_function

log = logging.getLogger(__name__)

SORTABLE = {
    "created_at": PartnerFunction.created_at, "updated_at": PartnerFunction.updated_at,
    "name": PartnerFunction.name, "direction": PartnerFunction.direction,
}


def create_partner_function(session: Session, connection_uuid: str,
                            payload: PartnerFunctionCreate) -> tuple[PartnerFunction, Connection]:
    """Store a new, enabled partner function on the connection."""
    connection = get_connection(session, connection_uuid)
    fields = payload.partner_function.model_dump()
    now = utcnow()
    pf = PartnerFunction(uuid=new_uuid(), connection_id=connection.id, enabled=True, created_at=now,
                         updated_at=now, **fields)
    session.add(pf)
    session.flush()
    log.info("created partner function %s on connection %s", pf.uuid, connection.uuid)
    return pf, connection


def update_partner_function(session: Session, connection_uuid: str, pf_uuid: str,
                            payload: PartnerFunctionUpdate) -> tuple[PartnerFunction, Connection]:
    """Change only the fields the request sends; a name cannot be blanked."""
    connection = get_connection(session, connection_uuid)
    pf = get_partner_function(session, connection, pf_uuid)
    body = payload.partner_function
    for field in body.model_fields_set:
        value = getattr(body, field)
        if field == "name" and value is None:
            raise DefinitionError("partner_function.name", "cannot be empty")
        setattr(pf, field, value)
    session.flush()
    log.info("updated partner function %s (%s)", pf.uuid, ", ".join(sorted(body.model_fields_set)))
    return pf, connection


def set_enabled(session: Session, connection_uuid: str, pf_uuid: str, enabled: bool) -> PartnerFunction:
    """Enable or disable a partner function (automations using a disabled one skip their runs)."""
    connection = get_connection(session, connection_uuid)
    pf = get_partner_function(session, connection, pf_uuid)
    pf.enabled = enabled
    session.flush()
    log.info("partner function %s enabled=%s", pf.uuid, enabled)
    return pf


def enable_message(enabled: bool) -> str:
    """The seed's message, word for word."""
    return f"Partner function has been {'enabled' if enabled else 'disabled'} successfully"


def list_partner_functions(session: Session, connection_uuid: str, page: PageRequest, *,
                           direction: str | None = None, enabled: bool | None = None
                           ) -> tuple[Page[PartnerFunction], Connection]:
    """A connection's partner functions, filtered by direction and enabled, oldest first by default."""
    connection = get_connection(session, connection_uuid)
    stmt = select(PartnerFunction).where(PartnerFunction.connection_id == connection.id)
    if check_filter(direction, "direction"):
        stmt = stmt.where(PartnerFunction.direction == str(direction).strip().upper())
    if enabled is not None:
        stmt = stmt.where(PartnerFunction.enabled == enabled)
    default = [PartnerFunction.created_at.asc(), PartnerFunction.id.asc()]
    return paginate(session, stmt, page, SORTABLE, default), connection


def partner_function_details(session: Session, connection_uuid: str,
                             pf_uuid: str) -> tuple[PartnerFunction, Connection]:
    """One partner function of the connection."""
    connection = get_connection(session, connection_uuid)
    return get_partner_function(session, connection, pf_uuid), connection
