"""The run object of DESIGN.md and the schedule preview."""

from __future__ import annotations

from pydantic import BaseModel

from models.schemas.common import Pagination


class RunPublic(BaseModel):
    """One run: the keys DESIGN.md lists, and what partner limits did to it (budget_wait_ms: time waited
    for the connection's budget; throttled: 429s received; resume_at: when a deferred run resumes)."""

    uuid: str
    automation_uuid: str
    scheduled_for: str
    trigger: str
    status: str
    reason: str | None
    records_fetched: int
    records_matched: int
    records_sent: int
    attempts: int
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    error: str | None
    budget_wait_ms: int = 0
    throttled: int = 0
    resume_at: str | None = None


class RunResponse(BaseModel):
    """`{"run": {...}}`."""

    run: RunPublic


class RunListResponse(BaseModel):
    """`{"runs": [...], "pagination": {...}}`, newest first."""

    runs: list[RunPublic]
    pagination: Pagination


class SchedulePreview(BaseModel):
    """The next fire times, in the automation's zone with its offset."""

    next_runs: list[str]
    checkOnText: str  # the seed spells it in camelCase
    time_zone: str


class BeatHealth(BaseModel):
    """Beat's liveness: `ok` if a leader ticked within BEAT_STALE_S, `stale` after, `absent` if none did."""

    status: str
    last_tick_age_s: float | None


class HealthResponse(BaseModel):
    """GET /health: each part "ok" or what is wrong with it; beat is reported but does not make it 503."""

    status: str
    database: str
    redis: str
    beat: BeatHealth


class TokenResponse(BaseModel):
    """POST /api/v1/oauth2/token: the keys the SDK's TokenResponseDTO and token managers read."""

    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
