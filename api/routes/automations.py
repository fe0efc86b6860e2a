"""Automations: create (seed 000), update (seed 001), list, details, delete; configuration (seed 001)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from api.deps import RedisDep, SessionDep, SettingsDep
from api.openapi import errors, link, server_validated, with_links
from api.pagination import pagination
from api.query import (
    AutomationPage,
    AutomationStatus,
    AutomationUuid,
    ConnectionUuid,
    DirectionFilter,
    HealthFilter,
    TextFilter,
)
from api.routes import V3, commit
from models.schemas.automations import (
    AutomationCreate,
    AutomationDescribed,
    AutomationDescribeResponse,
    AutomationListResponse,
    AutomationResponse,
    AutomationUpdate,
)
from models.schemas.common import Message
from models.schemas.health import RecentRun
from models.store import automations as service
from models.store import configuration, operations
from tasks import health_view
from tasks.render import automation_details, automation_public

router = APIRouter(tags=["automations"])
BASE = f"{V3}/integration/{{connection_uuid}}/automation"
ONE = f"{BASE}/{{automation_uuid}}"
CONFIGURATION = f"{V3}/integration/{{connection_uuid}}/configuration"
CONNECTION = "$request.path.connection_uuid"
CREATED = "$response.body#/integration_automation/uuid"
#: From a created automation to every operation taking its UUID.
AUTOMATION_LINKS: dict[str, dict[str, Any]] = {
    name: link(operation, description, connection_uuid=CONNECTION, automation_uuid=CREATED)
    for name, operation, description in (
        ("details", "get_automation", "the automation just created"),
        ("update", "update_automation", "change it"),
        ("delete", "delete_automation", "delete it with its runs"),
        ("pause", "pause_automation", "pause it"),
        ("resume", "resume_automation", "resume it"),
        ("trigger", "trigger_now", "run it now"),
        ("runs", "list_runs", "its runs"),
        ("schedule", "schedule_preview", "its next fire times"),
    )
}
#: Explain with a record given: a link-driven call reaches the evaluation, not the made-up api_domain.
AUTOMATION_LINKS["explain"] = link("explain_automation", "why it would (not) send a record",
                                   {"records": [{"id": "linked", "AccountNumber": "1QKGUL"}]},
                                   connection_uuid=CONNECTION, automation_uuid=CREATED)
#: From the other answers carrying an automation (details, update, pause, resume): run it now. (Few links
#: per answer keep Schemathesis' stateful walks, which pick among all links, reaching the runs.)
TRIGGER_LINKS = {"trigger": AUTOMATION_LINKS["trigger"]}
DETAILS = "integration.automation_details"
#: Validated beyond the document: the schedule's grammar and fields that depend on each other, the
#: partner function perform_action names, criteria that must compile.
SERVER_VALIDATED = server_validated(
    f"{DETAILS}.check_on", f"{DETAILS}.custom_day", f"{DETAILS}.custom_time", f"{DETAILS}.time_zone",
    f"{DETAILS}.perform_action", "integration.additional_criteria_details",
)


@router.post(BASE, response_model=AutomationResponse, operation_id="create_automation",
             responses={**errors(401, 404, 409, 422), **with_links(200, AUTOMATION_LINKS)},
             openapi_extra=SERVER_VALIDATED)
@router.post(f"{BASE}/", response_model=AutomationResponse, include_in_schema=False)
def create_automation(connection_uuid: ConnectionUuid, payload: AutomationCreate, session: SessionDep,
                      client: RedisDep, settings: SettingsDep) -> AutomationResponse:
    """Create an automation (seed 000): schedule and criteria validated, perform_action resolved.

    Beyond the document, the server checks the schedule (check_on's grammar, custom_day and custom_time
    as the schedule needs them, an IANA time_zone), that perform_action names a partner function of this
    connection, and that the criteria compile: a 422 then names the field (x-server-validated-fields).
    """
    automation, connection = service.create_automation(session, connection_uuid, payload,
                                                       settings.default_timezone)
    commit(session, client)
    return AutomationResponse(integration_automation=automation_public(automation, connection))


@router.get(BASE, response_model=AutomationListResponse, operation_id="list_automations",
            responses=errors(401, 404, 422))
@router.get(f"{BASE}/", response_model=AutomationListResponse, include_in_schema=False)
def list_automations(
    connection_uuid: ConnectionUuid, request: Request, session: SessionDep, page: AutomationPage,
    status: Annotated[AutomationStatus, Query()] = None,
    direction: Annotated[DirectionFilter, Query()] = None,
    applies_to: Annotated[TextFilter, Query(description="e.g. supplier")] = None,
    health_filter: Annotated[HealthFilter, Query(alias="health")] = None,
) -> AutomationListResponse:
    """List a connection's automations (the SDK's automation_list); `health=late,failing` keeps those."""
    result, connection = operations.list_automations(session, connection_uuid, page, status=status,
                                                     direction=direction, applies_to=applies_to,
                                                     health=health_filter)
    items = [automation_details(a, connection) for a in result.items]
    return AutomationListResponse(integration_automations=items, pagination=pagination(request.url, result))


@router.get(ONE, response_model=AutomationDescribeResponse, operation_id="get_automation",
            responses={**errors(401, 404), **with_links(200, TRIGGER_LINKS)})
def get_automation(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid,
                   session: SessionDep) -> AutomationDescribeResponse:
    """One automation with its stored settings, run state and health (the SDK's automation_details), its
    last 10 runs, next 5 fire times and the last 24 hours' runs per status."""
    automation, connection = operations.automation_details(session, connection_uuid, automation_uuid)
    described = AutomationDescribed(
        **automation_details(automation, connection).model_dump(),
        recent_runs=[RecentRun(**r) for r in health_view.recent_runs(session, automation)],
        next_runs=operations.preview(automation, health_view.NEXT_RUNS),
        counts_24h=health_view.counts_24h(session, automation))
    return AutomationDescribeResponse(integration_automation=described)


@router.patch(ONE, response_model=AutomationResponse, operation_id="update_automation",
              responses={**errors(401, 404, 409, 422), **with_links(200, TRIGGER_LINKS)},
              openapi_extra=SERVER_VALIDATED)
def update_automation(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid,
                      payload: AutomationUpdate, session: SessionDep, client: RedisDep,
                      settings: SettingsDep) -> AutomationResponse:
    """Update the fields sent (seed 001); a new schedule recomputes next_run_at in the same transaction.

    A required field may be left out but not sent as null. The server checks what it checks on create.
    """
    automation, connection = service.update_automation(session, connection_uuid, automation_uuid, payload,
                                                       settings.default_timezone)
    commit(session, client)
    return AutomationResponse(integration_automation=automation_public(automation, connection))


@router.delete(ONE, response_model=Message, operation_id="delete_automation", responses=errors(401, 404, 409))
def delete_automation(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, session: SessionDep,
                      client: RedisDep) -> Message:
    """Delete an automation and its run history."""
    message = operations.delete_automation(session, connection_uuid, automation_uuid)
    commit(session, client)
    return Message(message=message)


@router.get(CONFIGURATION, tags=["configuration"], operation_id="get_configuration",
            responses=errors(401, 404))
def get_configuration(connection_uuid: ConnectionUuid, session: SessionDep) -> dict[str, Any]:
    """The stored configuration document: `{"integration": {...}}` ({} when none was stored)."""
    return {"integration": configuration.get_configuration(session, connection_uuid)}


CONFIGURATION_PATCH = {"$ref": "#/components/schemas/ConfigurationPatch"}


@router.patch(CONFIGURATION, response_model=Message, tags=["configuration"],
              operation_id="update_configuration", responses=errors(401, 404, 409, 422),
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": CONFIGURATION_PATCH}}}})
def update_configuration(connection_uuid: ConnectionUuid, session: SessionDep,
                         patch: Annotated[Any, Body()]) -> Message:
    """Merge the body, a JSON object, into the stored document (seed 001; JSON merge patch, RFC 7386):
    null removes a key."""
    configuration.update_configuration(session, connection_uuid, patch)
    commit(session)
    return Message(message=configuration.UPDATED)
