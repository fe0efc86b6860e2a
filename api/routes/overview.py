"""GET /api/v3/automations/health: how many automations are in each health state, and which are late or
failing (at most 100 of each, oldest problem first), across every connection."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RedisDep, SessionDep, SettingsDep
from api.openapi import errors
from api.routes import V3
from models import health_query
from models.base import utcnow
from models.schemas.health import HealthOverview

router = APIRouter(tags=["health"])


@router.get(f"{V3}/automations/health", response_model=HealthOverview, operation_id="automations_health",
            responses=errors(401))
def automations_health(session: SessionDep, client: RedisDep, settings: SettingsDep) -> HealthOverview:
    """Counts per state (ok, late, failing, never_run, paused, disabled); the late automations, the oldest
    overdue slot first; the failing ones, failing longest first. Indexed queries only; the counts of the
    states stored on the rows are shared for HEALTH_COUNTS_CACHE_S (late and disabled are always fresh)."""
    now, late_after_s = utcnow(), settings.late_after_s
    return HealthOverview.model_validate({
        "counts": health_query.counts(session, now, late_after_s, client, settings.health_counts_cache_s),
        "late": [p.to_dict() for p in health_query.late(session, now, late_after_s)],
        "failing": [p.to_dict() for p in health_query.failing(session, now, late_after_s)],
    })
