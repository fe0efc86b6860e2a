"""POST .../explain: why the automation would (not) send these records, per record, group and rule."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse, Response

from api.deps import SessionDep
from api.errors import one_error
from api.openapi import errors, server_validated
from api.query import AutomationUuid, ConnectionUuid
from api.routes import V3
from models.base import utcnow
from models.errors import BudgetExceeded, IntegrationError
from models.schemas.explain import ExplainRequest, ExplainResponse
from models.store import operations
from tasks.explain import answer_json, explain

router = APIRouter(tags=["operations"])
ONE = f"{V3}/integration/{{connection_uuid}}/automation/{{automation_uuid}}"
DRAFT = "additional_criteria_details"


@router.post(f"{ONE}/explain", response_model=ExplainResponse, operation_id="explain_automation",
             responses=errors(401, 404, 422, 502, 503, e503="the connection's budget for its integration "
                              "API is spent for longer than BUDGET_MAX_WAIT_S (Retry-After says until when)"),
             openapi_extra=server_validated(DRAFT))
def explain_automation(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, session: SessionDep,
                       body: Annotated[ExplainRequest | None, Body()] = None) -> Any:
    """What the next run would decide, record by record, with each group's and each rule's verdict and the
    value each rule saw. Without `records` it fetches as the next run would (since the watermark,
    applies_to_function, within the connection's budget), at most `limit` (1..1000, default 100). With a
    draft of `additional_criteria_details` it evaluates the draft and says beside it what the stored
    criteria decide (`stored_matched`). It never invokes, never moves the watermark, never records a run.
    A failing integration API is a 502 naming it and its HTTP status."""
    request = body or ExplainRequest.model_validate({})
    automation, connection = operations.automation_details(session, connection_uuid, automation_uuid)
    try:
        answer = explain(automation, request)
    except BudgetExceeded as exc:
        wait_s = max(1, math.ceil((exc.resume_at - utcnow()).total_seconds()))
        return one_error(503, "budget", exc.reason, {"Retry-After": str(wait_s)})
    except IntegrationError as exc:
        return _partner_failed(connection.provider, exc)
    return Response(answer_json(answer), media_type="application/json")


def _partner_failed(provider: str, exc: IntegrationError) -> JSONResponse:
    """A 502 naming the connection's integration API and what it answered (the text is redacted)."""
    return one_error(502, "integration_api", f"the {provider} integration API failed: {exc}")
