"""Partner functions: create (seed 000), update (seed 001, bare object), enable/disable, list, details."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import PageDep, RedisDep, SessionDep
from api.fields import parse_flag
from api.pagination import pagination
from api.routes import ERRORS, V3, commit
from api.schemas.common import Message
from api.schemas.partner_functions import (
    PartnerFunctionCreate,
    PartnerFunctionListResponse,
    PartnerFunctionPublic,
    PartnerFunctionResponse,
    PartnerFunctionUpdate,
)
from api.services import partner_functions as service
from api.services.render import partner_function_public

router = APIRouter(tags=["partner functions"], responses=ERRORS)
BASE = f"{V3}/integration/{{connection_uuid}}/partner-function"
ONE = f"{BASE}/{{partner_function_uuid}}"


@router.post(f"{BASE}/", response_model=PartnerFunctionResponse)
@router.post(BASE, response_model=PartnerFunctionResponse, include_in_schema=False)
def create_partner_function(connection_uuid: str, payload: PartnerFunctionCreate,
                            session: SessionDep) -> PartnerFunctionResponse:
    """Create a partner function (seed 000); it starts enabled."""
    pf, connection = service.create_partner_function(session, connection_uuid, payload)
    commit(session)
    return PartnerFunctionResponse(partner_function=partner_function_public(pf, connection))


@router.get(f"{BASE}/", response_model=PartnerFunctionListResponse)
@router.get(BASE, response_model=PartnerFunctionListResponse, include_in_schema=False)
def list_partner_functions(
    connection_uuid: str, request: Request, session: SessionDep, page: PageDep,
    direction: Annotated[str | None, Query(description="IMPORT or EXPORT")] = None,
    enabled: Annotated[str | None, Query(description="true or false")] = None,
) -> PartnerFunctionListResponse:
    """List a connection's partner functions (the SDK's partner_function_list)."""
    result, connection = service.list_partner_functions(
        session, connection_uuid, page, direction=direction, enabled=parse_flag(enabled, "enabled"))
    items = [partner_function_public(pf, connection) for pf in result.items]
    return PartnerFunctionListResponse(partner_functions=items, pagination=pagination(request.url, result))


@router.get(ONE, response_model=PartnerFunctionResponse)
def partner_function_details(connection_uuid: str, partner_function_uuid: str,
                             session: SessionDep) -> PartnerFunctionResponse:
    """One partner function (the SDK's partner_function_details)."""
    pf, connection = service.partner_function_details(session, connection_uuid, partner_function_uuid)
    return PartnerFunctionResponse(partner_function=partner_function_public(pf, connection))


@router.patch(ONE, response_model=PartnerFunctionPublic)
def update_partner_function(connection_uuid: str, partner_function_uuid: str, payload: PartnerFunctionUpdate,
                            session: SessionDep) -> PartnerFunctionPublic:
    """Update the fields sent (seed 001); answers the bare object, as seed 001 and the SDK's DTO read it."""
    pf, connection = service.update_partner_function(session, connection_uuid, partner_function_uuid, payload)
    commit(session)
    return partner_function_public(pf, connection)


@router.post(f"{ONE}/enable", response_model=Message)
def enable_partner_function(connection_uuid: str, partner_function_uuid: str, session: SessionDep,
                            client: RedisDep) -> Message:
    """Enable a partner function ("Partner function has been enabled successfully")."""
    service.set_enabled(session, connection_uuid, partner_function_uuid, True)
    commit(session, client)
    return Message(message=service.enable_message(True))


@router.post(f"{ONE}/disable", response_model=Message)
def disable_partner_function(connection_uuid: str, partner_function_uuid: str, session: SessionDep,
                             client: RedisDep) -> Message:
    """Disable a partner function; runs of automations using it are skipped with the reason."""
    service.set_enabled(session, connection_uuid, partner_function_uuid, False)
    commit(session, client)
    return Message(message=service.enable_message(False))
