"""An automation's health, its recent past and near future, and the health overview."""

from __future__ import annotations

from pydantic import BaseModel


class HealthPublic(BaseModel):
    """ok, late, failing, never_run, paused or disabled; since when, why, the last success, failures."""

    state: str
    since: str | None
    reason: str | None
    last_success_at: str | None
    consecutive_failures: int


class RecentRun(BaseModel):
    """One of the last runs: its slot, when it started, its status, and drift (start − slot, seconds)."""

    uuid: str
    scheduled_for: str
    started_at: str | None
    status: str
    trigger: str
    drift_s: float | None


class HealthProblem(BaseModel):
    """A late or failing automation in the overview."""

    uuid: str
    code: str
    name: str
    connection_uuid: str
    health: HealthPublic


class HealthOverview(BaseModel):
    """GET /api/v3/automations/health: every state's count; the late and the failing (oldest problem first,
    at most 100 of each)."""

    counts: dict[str, int]
    late: list[HealthProblem]
    failing: list[HealthProblem]
