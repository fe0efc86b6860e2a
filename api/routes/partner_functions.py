"""Partner functions: create (seed 000), update (seed 001, bare object), enable/disable, list, details."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.deps import RedisDep, SessionDep
from api.openapi import errors, link, with_links
from api.pagination import pagination
from api.query import ConnectionUuid, DirectionFilter, PartnerFunctionPage, PartnerFunctionUuid, QueryFlag
from api.routes import V3, commit
from models.schemas.common import Message
from models.schemas.partner_functions import (
    PartnerFunctionCreate,
    PartnerFunctionListResponse,
    PartnerFunctionPublic,
    PartnerFunctionResponse,
    PartnerFunctionUpdate,
)
from models.store import partner_functions as service
from tasks.render import partner_function_public

router = APIRouter(tags=["partner functions"])
BASE = f"{V3}/integration/{{connection_uuid}}/partner-function"
ONE = f"{BASE}/{{partner_function_uuid}}"
CONNECTION = "$request.path.connection_uuid"
CREATED = "$response.body#/partner_function/uuid"


def automation_using(uuid: str) -> dict[str, Any]:
    """A link's body: a schedule and no criteria, the partner function at `uuid` as perform_action; an
    automation the server accepts whatever else a client (or a fuzzer) puts beside it."""
    details = {"check_on": "8 hours", "custom_day": None, "custom_time": None, "time_zone": "UTC",
               "perform_action": uuid}
    return {"integration": {"automation_details": details, "additional_criteria_details": None}}


def partner_function_links(uuid: str) -> dict[str, dict[str, Any]]:
    """From an answer carrying a partner function (its UUID at `uuid`) to what takes that UUID."""
    return {
        "details": link("partner_function_details", "the partner function", connection_uuid=CONNECTION,
                        partner_function_uuid=uuid),
        "update": link("update_partner_function", "change it", connection_uuid=CONNECTION,
                       partner_function_uuid=uuid),
        "enable": link("enable_partner_function", "enable it", connection_uuid=CONNECTION,
                       partner_function_uuid=uuid),
        "disable": link("disable_partner_function", "disable it", connection_uuid=CONNECTION,
                        partner_function_uuid=uuid),
        "createAutomation": link("create_automation", "an automation that runs it (perform_action)",
                                 automation_using(uuid), connection_uuid=CONNECTION),
    }


PARTNER_FUNCTION_LINKS = partner_function_links(CREATED)


def automation_link(uuid: str) -> dict[str, dict[str, Any]]:
    """From the other answers carrying a partner function (details, update): an automation running it."""
    return {"createAutomation": partner_function_links(uuid)["createAutomation"]}
WRITE_ERRORS = errors(401, 404, 409)


@router.post(f"{BASE}/", response_model=PartnerFunctionResponse, operation_id="create_partner_function",
             responses={**errors(401, 404, 409, 422), **with_links(200, PARTNER_FUNCTION_LINKS)})
@router.post(BASE, response_model=PartnerFunctionResponse, include_in_schema=False)
def create_partner_function(connection_uuid: ConnectionUuid, payload: PartnerFunctionCreate,
                            session: SessionDep) -> PartnerFunctionResponse:
    """Create a partner function (seed 000); it starts enabled."""
    pf, connection = service.create_partner_function(session, connection_uuid, payload)
    commit(session)
    return PartnerFunctionResponse(partner_function=partner_function_public(pf, connection))


@router.get(f"{BASE}/", response_model=PartnerFunctionListResponse, operation_id="list_partner_functions",
            responses=errors(401, 404, 422))
@router.get(BASE, response_model=PartnerFunctionListResponse, include_in_schema=False)
def list_partner_functions(
    connection_uuid: ConnectionUuid, request: Request, session: SessionDep, page: PartnerFunctionPage,
    direction: Annotated[DirectionFilter, Query()] = None,
    enabled: Annotated[QueryFlag, Query()] = None,
) -> PartnerFunctionListResponse:
    """List a connection's partner functions (the SDK's partner_function_list)."""
    result, connection = service.list_partner_functions(session, connection_uuid, page, direction=direction,
                                                        enabled=enabled)
    items = [partner_function_public(pf, connection) for pf in result.items]
    return PartnerFunctionListResponse(partner_functions=items, pagination=pagination(request.url, result))


@router.get(ONE, response_model=PartnerFunctionResponse, operation_id="partner_function_details",
            responses={**errors(401, 404), **with_links(200, automation_link(CREATED))})
def partner_function_details(connection_uuid: ConnectionUuid, partner_function_uuid: PartnerFunctionUuid,
                             session: SessionDep) -> PartnerFunctionResponse:
    """One partner function (the SDK's partner_function_details)."""
    pf, connection = service.partner_function_details(session, connection_uuid, partner_function_uuid)
    return PartnerFunctionResponse(partner_function=partner_function_public(pf, connection))


@router.patch(ONE, response_model=PartnerFunctionPublic, operation_id="update_partner_function",
              responses={**errors(401, 404, 409, 422),
                         **with_links(200, automation_link("$response.body#/uuid"))})
def update_partner_function(connection_uuid: ConnectionUuid, partner_function_uuid: PartnerFunctionUuid,
                            payload: PartnerFunctionUpdate, session: SessionDep) -> PartnerFunctionPublic:
    """Update the fields sent (seed 001); answers the bare object, as seed 001 and the SDK's DTO read it."""
    pf, connection = service.update_partner_function(session, connection_uuid, partner_function_uuid, payload)
    commit(session)
    return partner_function_public(pf, connection)


@router.post(f"{ONE}/enable", response_model=Message, operation_id="enable_partner_function",
             responses=WRITE_ERRORS)
def enable_partner_function(connection_uuid: ConnectionUuid, partner_function_uuid: PartnerFunctionUuid,
                            session: SessionDep, client: RedisDep) -> Message:
    """Enable a partner function ("Partner function has been enabled successfully")."""
    service.set_enabled(session, connection_uuid, partner_function_uuid, True)
    commit(session, client)
    return Message(message=service.enable_message(True))


@router.post(f"{ONE}/disable", response_model=Message, operation_id="disable_partner_function",
             responses=WRITE_ERRORS)
def disable_partner_function(connection_uuid: ConnectionUuid, partner_function_uuid: PartnerFunctionUuid,
                             session: SessionDep, client: RedisDep) -> Message:
    """Disable a partner function; runs of automations using it are skipped with the reason."""
    service.set_enabled(session, connection_uuid, partner_function_uuid, False)
    commit(session, client)
    return Message(message=service.enable_message(False))
