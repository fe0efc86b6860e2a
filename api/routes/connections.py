"""Integration connections: create (seed 000), enable/disable (seed + SDK paths), delete, list, details."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import PageDep, RedisDep, SessionDep, SettingsDep
from api.pagination import pagination
from api.routes import ERRORS, V2, V3, commit
from api.schemas.common import Message
from api.schemas.connections import (
    ConnectionCreate,
    ConnectionCreated,
    ConnectionCreateResponse,
    ConnectionDetailsResponse,
    ConnectionListResponse,
)
from api.services import connections as service
from api.services.lookup import get_connection
from api.services.render import connection_details, connection_public

router = APIRouter(tags=["connections"], responses=ERRORS)


@router.post(f"{V3}/integration", response_model=ConnectionCreateResponse)
@router.post(f"{V3}/integration/", response_model=ConnectionCreateResponse, include_in_schema=False)
def create_connection(payload: ConnectionCreate, session: SessionDep,
                      settings: SettingsDep) -> ConnectionCreateResponse:
    """Create a connection (seed 000); credentials are stored encrypted and answered masked."""
    connection = service.create_connection(session, payload, settings.secret_key)
    commit(session)
    public = connection_public(connection, settings.secret_key)
    return ConnectionCreateResponse(integration=ConnectionCreated(integration_connection=public))


def _set_enabled(connection_uuid: str, enabled: bool, session: SessionDep, client: RedisDep) -> Message:
    """Shared body of the four enable/disable routes."""
    connection = service.set_enabled(session, connection_uuid, enabled)
    commit(session, client)
    return Message(message=service.enable_message(connection, enabled))


@router.post(f"{V3}/integration/{{connection_uuid}}/enable", response_model=Message)
@router.post(f"{V3}/integration-connections/{{connection_uuid}}/enable", response_model=Message)
def enable_connection(connection_uuid: str, session: SessionDep, client: RedisDep) -> Message:
    """Enable a connection: ACTIVE, no longer suspended ("XERO integration has been enable successfully")."""
    return _set_enabled(connection_uuid, True, session, client)


@router.post(f"{V3}/integration/{{connection_uuid}}/disable", response_model=Message)
@router.post(f"{V3}/integration-connections/{{connection_uuid}}/disable", response_model=Message)
def disable_connection(connection_uuid: str, session: SessionDep, client: RedisDep) -> Message:
    """Disable a connection: INACTIVE; its automations' runs are skipped until it is enabled."""
    return _set_enabled(connection_uuid, False, session, client)


@router.delete(f"{V3}/integration/{{connection_uuid}}", response_model=Message)
def delete_connection(connection_uuid: str, session: SessionDep, client: RedisDep) -> Message:
    """Delete a connection and everything under it (partner functions, automations, runs, configuration)."""
    message = service.delete_connection(session, connection_uuid)
    commit(session, client)
    return Message(message=message)


@router.get(f"{V2}/integration-connections", response_model=ConnectionListResponse)
def list_connections(request: Request, session: SessionDep, settings: SettingsDep, page: PageDep,
                     status: Annotated[str | None, Query(description="ACTIVE or INACTIVE")] = None,
                     provider: Annotated[str | None, Query(description="a name or a code")] = None,
                     ) -> ConnectionListResponse:
    """List connections (the SDK's connection_list)."""
    result = service.list_connections(session, page, status=status, provider=provider)
    items = [connection_details(c, settings.secret_key) for c in result.items]
    return ConnectionListResponse(integration_connection=items, pagination=pagination(request.url, result))


@router.get(f"{V2}/integration-connections/{{connection_uuid}}", response_model=ConnectionDetailsResponse)
def connection_by_uuid(connection_uuid: str, session: SessionDep,
                       settings: SettingsDep) -> ConnectionDetailsResponse:
    """One connection (the SDK's get_connection_by_id)."""
    connection = get_connection(session, connection_uuid)
    details = connection_details(connection, settings.secret_key)
    return ConnectionDetailsResponse(integration_connection=details)
