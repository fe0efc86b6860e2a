"""Connections: create from the seed 000 payload, enable, disable, delete, list."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.base import new_uuid, utcnow
from models.connection import ACTIVE, INACTIVE, Connection
from models.errors import ConflictError
from models.providers import provider_code
from models.schemas.connections import ConnectionCreate, ConnectionUpdate
from models.store.credentials import store_credentials
from models.store.listing import Page, PageRequest, check_filter, paginate
from models.store.lookup import get_connection

log = logging.getLogger(__name__)

#: Request field → credential name stored encrypted.
CREDENTIALS = {
    "integration_client_secret": "client_secret",
    "integration_access_token": "access_token",
    "integration_refresh_token": "refresh_token",
    "user_password": "user_password",
}
SORTABLE = {
    "created_at": Connection.created_at, "updated_at": Connection.updated_at,
    "provider": Connection.provider, "status": Connection.status,
}


def create_connection(session: Session, payload: ConnectionCreate, secret_key: str) -> Connection:
    """Store a connection, ACTIVE, its credentials encrypted; a second one for the same provider and
    remote_instance_id is a 409 naming the first (reconnect it with PATCH instead)."""
    p, now = payload, utcnow()
    refuse_duplicate(session, provider_code(p.provider), p.remote_instance_id)
    connection = Connection(
        uuid=new_uuid(), created_at=now, updated_at=now, provider=provider_code(p.provider),
        provider_name=p.provider.strip(), status=ACTIVE,
        remote_instance_id=p.remote_instance_id, remote_instance_code=p.remote_instance_code,
        remote_instance_name=p.remote_instance_name, remote_instance_display=p.remote_instance_display,
        client_id=p.integration_client_id, token_type=p.token_type, expires_in=p.expires_in,
        account_server=p.account_server, api_domain=p.api_domain, supporting_fields=p.supporting_fields,
        user_name=p.user_name, require_authentication=bool(p.require_authentication), state=p.state,
        company_file=p.company_file, company_name=p.company_name, suspended=False, needs_reconnect=False,
        rate_limits=p.rate_limits.overrides() if p.rate_limits is not None else None,
    )
    for field, name in CREDENTIALS.items():
        connection.set_secret(name, getattr(p, field), secret_key)
    session.add(connection)
    session.flush()
    log.info("created connection %s (%s)", connection.uuid, connection.provider)
    return connection


def refuse_duplicate(session: Session, provider: str, remote_instance_id: str | None,
                     other_than: int | None = None) -> None:
    """A ConflictError (409 on remote_instance_id) when that provider's tenant already has a connection."""
    if not remote_instance_id:
        return
    stmt = select(Connection.uuid).where(Connection.provider == provider,
                                         Connection.remote_instance_id == remote_instance_id)
    if other_than is not None:
        stmt = stmt.where(Connection.id != other_than)
    existing = session.scalars(stmt.limit(1)).first()
    if existing is not None:
        raise ConflictError("remote_instance_id", f"a {provider} connection for remote_instance_id "
                            f"'{remote_instance_id}' already exists: {existing}; to give it new credentials, "
                            f"PATCH /api/v3/integration/{existing}")


#: Request field → column, for the fields a PATCH copies as they are.
PLAIN_FIELDS = {
    "remote_instance_id": "remote_instance_id", "remote_instance_code": "remote_instance_code",
    "remote_instance_name": "remote_instance_name", "remote_instance_display": "remote_instance_display",
    "integration_client_id": "client_id", "token_type": "token_type", "expires_in": "expires_in",
    "account_server": "account_server", "api_domain": "api_domain", "supporting_fields": "supporting_fields",
    "user_name": "user_name", "state": "state", "company_file": "company_file",
    "company_name": "company_name",
}


def update_connection(session: Session, connection_uuid: str, payload: ConnectionUpdate,
                      secret_key: str) -> Connection:
    """Change only the fields sent. Credentials are stored encrypted; a new access or refresh token
    reconnects the connection (clears needs_reconnect, so its automations run again). `rate_limits` is
    merged key by key into the stored overrides (null for a key: no limit; `rate_limits: null`: back to the
    provider's defaults)."""
    connection = get_connection(session, connection_uuid)
    sent = payload.model_fields_set
    for field, column in PLAIN_FIELDS.items():
        if field in sent:
            setattr(connection, column, getattr(payload, field))
    if "provider" in sent and payload.provider is not None:
        connection.provider = provider_code(payload.provider)
        connection.provider_name = payload.provider.strip()
    if "require_authentication" in sent:
        connection.require_authentication = bool(payload.require_authentication)
    store_credentials(connection, {name: getattr(payload, field) for field, name in CREDENTIALS.items()
                                   if field in sent}, secret_key)  # new tokens clear needs_reconnect
    if "rate_limits" in sent:
        given = payload.rate_limits
        connection.rate_limits = {**(connection.rate_limits or {}), **given.overrides()} if given else None
    if sent & {"provider", "remote_instance_id"}:
        refuse_duplicate(session, connection.provider, connection.remote_instance_id, connection.id)
    connection.updated_at = utcnow()
    session.flush()
    log.info("updated connection %s: %s", connection.uuid, ", ".join(sorted(sent)) or "nothing")
    return connection


def set_enabled(session: Session, connection_uuid: str, enabled: bool) -> Connection:
    """Enable (ACTIVE, no longer suspended) or disable (INACTIVE) a connection."""
    connection = get_connection(session, connection_uuid)
    connection.status = ACTIVE if enabled else INACTIVE
    if enabled:
        connection.suspended = False
        connection.suspension_comment = None
    session.flush()
    log.info("connection %s is now %s", connection.uuid, connection.status)
    return connection


def enable_message(connection: Connection, enabled: bool) -> str:
    """The seed's message, word for word: "XERO integration has been enable successfully"."""
    return f"{connection.provider} integration has been {'enable' if enabled else 'disable'} successfully"


def delete_connection(session: Session, connection_uuid: str) -> str:
    """Delete a connection with its partner functions, automations, runs and configuration (cascade)."""
    connection = get_connection(session, connection_uuid)
    provider = connection.provider
    count = session.scalar(select(func.count()).where(Automation.connection_id == connection.id))
    session.delete(connection)
    session.flush()
    log.info("deleted connection %s with %d automations", connection_uuid, count)
    return f"{provider} integration has been deleted successfully"


def list_connections(session: Session, page: PageRequest, *, status: str | None = None,
                     provider: str | None = None) -> Page[Connection]:
    """Connections filtered by status and provider (a name or a code), oldest first by default."""
    stmt = select(Connection)
    if check_filter(status, "status"):
        stmt = stmt.where(Connection.status == str(status).strip().upper())
    if check_filter(provider, "provider"):
        stmt = stmt.where(Connection.provider == provider_code(str(provider)))
    return paginate(session, stmt, page, SORTABLE, [Connection.created_at.asc(), Connection.id.asc()])
