"""Integration connections: create (seed 000), enable/disable (seed + SDK paths), delete, list, details."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import RedisDep, SessionDep, SettingsDep
from api.openapi import errors, link, server_validated, with_links
from api.pagination import pagination
from api.query import ConnectionPage, ConnectionStatus, ConnectionUuid, TextFilter
from api.routes import V2, V3, commit
from models.schemas.common import Message
from models.schemas.connections import (
    ConnectionCreate,
    ConnectionCreated,
    ConnectionCreateResponse,
    ConnectionDetailsResponse,
    ConnectionListResponse,
    ConnectionUpdate,
)
from models.store import connections as service
from models.store.lookup import get_connection
from tasks.render import budget_state, connection_details, connection_public

router = APIRouter(tags=["connections"])
CREATED = "$response.body#/integration/integration_connection/uuid"
#: Where a created connection's UUID leads: every operation that takes a connection_uuid.
CONNECTION_LINKS: dict[str, dict[str, Any]] = {
    "details": link("connection_by_uuid", "the connection just created", connection_uuid=CREATED),
    "enable": link("enable_connection", "enable it", connection_uuid=CREATED),
    "disable": link("disable_connection", "disable it", connection_uuid=CREATED),
    "enableSeedPath": link("enable_connection_seed_path", "enable it (seed 000's path)",
                           connection_uuid=CREATED),
    "disableSeedPath": link("disable_connection_seed_path", "disable it (seed 000's path)",
                            connection_uuid=CREATED),
    "delete": link("delete_connection", "delete it", connection_uuid=CREATED),
    "update": link("update_connection", "change its fields", connection_uuid=CREATED),
    "createPartnerFunction": link("create_partner_function", "add a partner function",
                                  connection_uuid=CREATED),
    "listPartnerFunctions": link("list_partner_functions", "its partner functions", connection_uuid=CREATED),
    "createAutomation": link("create_automation", "add an automation", connection_uuid=CREATED),
    "listAutomations": link("list_automations", "its automations", connection_uuid=CREATED),
    "getConfiguration": link("get_configuration", "its configuration", connection_uuid=CREATED),
    "updateConfiguration": link("update_configuration", "merge into its configuration",
                                connection_uuid=CREATED),
}


@router.post(f"{V3}/integration", response_model=ConnectionCreateResponse, operation_id="create_connection",
             responses={**errors(401, 409, 422), **with_links(200, CONNECTION_LINKS)},
             openapi_extra=server_validated("supporting_fields"))
@router.post(f"{V3}/integration/", response_model=ConnectionCreateResponse, include_in_schema=False)
def create_connection(payload: ConnectionCreate, session: SessionDep,
                      settings: SettingsDep) -> ConnectionCreateResponse:
    """Create a connection (seed 000); credentials are stored encrypted and answered masked.

    `supporting_fields` is a JSON object written as text, as seed 000 sends it (an object is accepted
    too and stored as its text): the document can say "a string" but not "that parses as an object".
    """
    connection = service.create_connection(session, payload, settings.secret_key)
    commit(session)
    public = connection_public(connection, settings.secret_key)
    return ConnectionCreateResponse(integration=ConnectionCreated(integration_connection=public))


@router.patch(f"{V3}/integration/{{connection_uuid}}", response_model=ConnectionCreateResponse,
              operation_id="update_connection", responses=errors(401, 404, 409, 422),
              openapi_extra=server_validated("supporting_fields"))
def update_connection(connection_uuid: ConnectionUuid, payload: ConnectionUpdate, session: SessionDep,
                      settings: SettingsDep) -> ConnectionCreateResponse:
    """Change the fields sent (the create fields): credentials encrypted and answered masked; new tokens
    reconnect a connection flagged after a refused refresh; `rate_limits` overrides the provider's limits
    key by key (null: none; `"rate_limits": null`: the provider's defaults again)."""
    connection = service.update_connection(session, connection_uuid, payload, settings.secret_key)
    commit(session)
    public = connection_public(connection, settings.secret_key)
    return ConnectionCreateResponse(integration=ConnectionCreated(integration_connection=public))


def _set_enabled(connection_uuid: str, enabled: bool, session: SessionDep, client: RedisDep) -> Message:
    """Shared body of the four enable/disable routes."""
    connection = service.set_enabled(session, connection_uuid, enabled)
    commit(session, client)
    return Message(message=service.enable_message(connection, enabled))


WRITE_ERRORS = errors(401, 404, 409)


@router.post(f"{V3}/integration/{{connection_uuid}}/enable", response_model=Message,
             operation_id="enable_connection", responses=WRITE_ERRORS)
@router.post(f"{V3}/integration-connections/{{connection_uuid}}/enable", response_model=Message,
             operation_id="enable_connection_seed_path", responses=WRITE_ERRORS)
def enable_connection(connection_uuid: ConnectionUuid, session: SessionDep, client: RedisDep) -> Message:
    """Enable a connection: ACTIVE, no longer suspended ("XERO integration has been enable successfully")."""
    return _set_enabled(connection_uuid, True, session, client)


@router.post(f"{V3}/integration/{{connection_uuid}}/disable", response_model=Message,
             operation_id="disable_connection", responses=WRITE_ERRORS)
@router.post(f"{V3}/integration-connections/{{connection_uuid}}/disable", response_model=Message,
             operation_id="disable_connection_seed_path", responses=WRITE_ERRORS)
def disable_connection(connection_uuid: ConnectionUuid, session: SessionDep, client: RedisDep) -> Message:
    """Disable a connection: INACTIVE; its automations' runs are skipped until it is enabled."""
    return _set_enabled(connection_uuid, False, session, client)


@router.delete(f"{V3}/integration/{{connection_uuid}}", response_model=Message,
               operation_id="delete_connection", responses=WRITE_ERRORS)
def delete_connection(connection_uuid: ConnectionUuid, session: SessionDep, client: RedisDep) -> Message:
    """Delete a connection and everything under it (partner functions, automations, runs, configuration)."""
    message = service.delete_connection(session, connection_uuid)
    commit(session, client)
    return Message(message=message)


@router.get(f"{V2}/integration-connections", response_model=ConnectionListResponse,
            operation_id="list_connections", responses=errors(401, 422))
def list_connections(request: Request, session: SessionDep, settings: SettingsDep, page: ConnectionPage,
                     status: Annotated[ConnectionStatus, Query()] = None,
                     provider: Annotated[TextFilter, Query(description="a name or a code")] = None,
                     ) -> ConnectionListResponse:
    """List connections (the SDK's connection_list)."""
    result = service.list_connections(session, page, status=status, provider=provider)
    items = [connection_details(c, settings.secret_key) for c in result.items]
    return ConnectionListResponse(integration_connection=items, pagination=pagination(request.url, result))


@router.get(f"{V2}/integration-connections/{{connection_uuid}}", response_model=ConnectionDetailsResponse,
            operation_id="connection_by_uuid", responses=errors(401, 404))
def connection_by_uuid(connection_uuid: ConnectionUuid, session: SessionDep, settings: SettingsDep,
                       client: RedisDep) -> ConnectionDetailsResponse:
    """One connection (the SDK's get_connection_by_id), with the limits in force and its budget's state."""
    connection = get_connection(session, connection_uuid)
    details = connection_details(connection, settings.secret_key, budget_state(connection, client))
    return ConnectionDetailsResponse(integration_connection=details)
