"""GET /metrics for Prometheus: the bearer token unless METRICS_PUBLIC=true (api/metrics.py builds it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.auth import CHALLENGE, bearer_of, matching_token
from api.deps import RedisDep, SessionDep, SettingsDep
from api.errors import one_error
from api.metrics import exposition
from models.base import utcnow

router = APIRouter(tags=["health"])


# Not in the OpenAPI document: Prometheus reads it, not API clients (docs/metrics.md describes it).
@router.get("/metrics", operation_id="metrics", response_class=Response, include_in_schema=False)
def metrics(request: Request, session: SessionDep, client: RedisDep, settings: SettingsDep) -> Response:
    """Runs by status and trigger, run duration and drift, automations by status and health, the due
    backlog, deferred runs, beat's last tick, partner calls by provider and outcome, budget waits."""
    if not settings.metrics_public and matching_token(bearer_of(request.scope.get("headers", [])),
                                                      settings.api_token) is None:
        return one_error(401, "authorization", "missing or invalid bearer token", CHALLENGE)
    body = exposition(session, client, utcnow(), settings.late_after_s, settings.health_counts_cache_s)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
