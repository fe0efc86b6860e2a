"""Automations: create (seed 000), update (seed 001), list, details, delete; configuration (seed 001)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from api.deps import PageDep, RedisDep, SessionDep, SettingsDep
from api.pagination import pagination
from api.routes import ERRORS, V3, commit
from api.schemas.automations import (
    AutomationCreate,
    AutomationDetailsResponse,
    AutomationListResponse,
    AutomationResponse,
    AutomationUpdate,
)
from api.schemas.common import Message
from api.services import automations as service
from api.services import configuration, operations
from api.services.render import automation_details, automation_public

router = APIRouter(tags=["automations"], responses=ERRORS)
BASE = f"{V3}/integration/{{connection_uuid}}/automation"
ONE = f"{BASE}/{{automation_uuid}}"
CONFIGURATION = f"{V3}/integration/{{connection_uuid}}/configuration"


@router.post(BASE, response_model=AutomationResponse)
@router.post(f"{BASE}/", response_model=AutomationResponse, include_in_schema=False)
def create_automation(connection_uuid: str, payload: AutomationCreate, session: SessionDep, client: RedisDep,
                      settings: SettingsDep) -> AutomationResponse:
    """Create an automation (seed 000): schedule and criteria validated, perform_action resolved."""
    automation, connection = service.create_automation(session, connection_uuid, payload,
                                                       settings.default_timezone)
    commit(session, client)
    return AutomationResponse(integration_automation=automation_public(automation, connection))


@router.get(BASE, response_model=AutomationListResponse)
@router.get(f"{BASE}/", response_model=AutomationListResponse, include_in_schema=False)
def list_automations(
    connection_uuid: str, request: Request, session: SessionDep, page: PageDep,
    status: Annotated[str | None, Query(description="ACTIVE or PAUSED")] = None,
    direction: Annotated[str | None, Query(description="IMPORT or EXPORT")] = None,
    applies_to: Annotated[str | None, Query(description="e.g. supplier")] = None,
) -> AutomationListResponse:
    """List a connection's automations (the SDK's automation_list)."""
    result, connection = operations.list_automations(session, connection_uuid, page, status=status,
                                                     direction=direction, applies_to=applies_to)
    items = [automation_details(a, connection) for a in result.items]
    return AutomationListResponse(integration_automations=items, pagination=pagination(request.url, result))


@router.get(ONE, response_model=AutomationDetailsResponse)
def get_automation(connection_uuid: str, automation_uuid: str,
                   session: SessionDep) -> AutomationDetailsResponse:
    """One automation with its stored settings and run state (the SDK's automation_details)."""
    automation, connection = operations.automation_details(session, connection_uuid, automation_uuid)
    return AutomationDetailsResponse(integration_automation=automation_details(automation, connection))


@router.patch(ONE, response_model=AutomationResponse)
def update_automation(connection_uuid: str, automation_uuid: str, payload: AutomationUpdate,
                      session: SessionDep, client: RedisDep, settings: SettingsDep) -> AutomationResponse:
    """Update the fields sent (seed 001); a new schedule recomputes next_run_at in the same transaction."""
    automation, connection = service.update_automation(session, connection_uuid, automation_uuid, payload,
                                                       settings.default_timezone)
    commit(session, client)
    return AutomationResponse(integration_automation=automation_public(automation, connection))


@router.delete(ONE, response_model=Message)
def delete_automation(connection_uuid: str, automation_uuid: str, session: SessionDep,
                      client: RedisDep) -> Message:
    """Delete an automation and its run history."""
    message = operations.delete_automation(session, connection_uuid, automation_uuid)
    commit(session, client)
    return Message(message=message)


@router.get(CONFIGURATION, tags=["configuration"])
def get_configuration(connection_uuid: str, session: SessionDep) -> dict[str, Any]:
    """The stored configuration document: `{"integration": {...}}` ({} when none was stored)."""
    return {"integration": configuration.get_configuration(session, connection_uuid)}


@router.patch(CONFIGURATION, response_model=Message, tags=["configuration"])
def update_configuration(connection_uuid: str, session: SessionDep,
                         patch: Annotated[Any, Body(description="a JSON merge patch (RFC 7386)")]) -> Message:
    """Merge the body into the stored document (seed 001): null removes a key."""
    configuration.update_configuration(session, connection_uuid, patch)
    commit(session)
    return Message(message=configuration.UPDATED)
