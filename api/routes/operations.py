"""Operator endpoints: pause, resume, trigger now, run history, one run, next fire times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import redis
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from api.deps import PageDep, RedisDep, SessionDep
from api.pagination import pagination
from api.routes import ERRORS, V3, commit
from api.schemas.automations import AutomationDetailsResponse, PauseBody
from api.schemas.runs import RunListResponse, RunResponse, SchedulePreview
from api.services import operations, runs
from api.services.lookup import get_run
from api.services.render import automation_details, run_public
from models.scheduling import schedule_of
from tasks.enqueue import enqueue_run

router = APIRouter(tags=["operations"], responses=ERRORS)
ONE = f"{V3}/integration/{{connection_uuid}}/automation/{{automation_uuid}}"


@router.post(f"{ONE}/pause", response_model=AutomationDetailsResponse)
def pause(connection_uuid: str, automation_uuid: str, session: SessionDep, client: RedisDep,
          body: Annotated[PauseBody | None, Body()] = None) -> AutomationDetailsResponse:
    """Pause with a comment (`{"comment": "..."}`); beat stops dispatching it at once."""
    comment = body.comment if body else None
    automation, connection = operations.pause(session, connection_uuid, automation_uuid, comment)
    commit(session, client)
    return AutomationDetailsResponse(integration_automation=automation_details(automation, connection))


@router.post(f"{ONE}/resume", response_model=AutomationDetailsResponse)
def resume(connection_uuid: str, automation_uuid: str, session: SessionDep,
           client: RedisDep) -> AutomationDetailsResponse:
    """Resume: ACTIVE, next due at the schedule's first slot from now."""
    automation, connection = operations.resume(session, connection_uuid, automation_uuid)
    commit(session, client)
    return AutomationDetailsResponse(integration_automation=automation_details(automation, connection))


def _enqueue_checked(client: redis.Redis) -> Callable[[str, datetime], str]:
    """enqueue_run, after a quick PING so a dead Redis fails fast instead of stalling in Celery's retries."""

    def enqueue(automation_uuid: str, scheduled_for: datetime) -> str:
        """PING (1 s timeout), then send the task."""
        client.ping()
        return enqueue_run(automation_uuid, scheduled_for)

    return enqueue


@router.post(f"{ONE}/run", status_code=202, response_model=RunResponse,
             responses={503: {"description": "Redis is unavailable; the run is recorded failed"}})
def trigger_now(connection_uuid: str, automation_uuid: str, session: SessionDep,
                client: RedisDep) -> JSONResponse:
    """Trigger now: a queued manual run (a paused or disabled automation's run ends skipped)."""
    run, automation = runs.queue_manual_run(session, connection_uuid, automation_uuid)
    runs.dispatch_run(session, run, automation, _enqueue_checked(client))
    body = RunResponse(run=run_public(run, automation.uuid))
    return JSONResponse(status_code=202, content=body.model_dump())


@router.get(f"{ONE}/runs", response_model=RunListResponse)
def list_runs(connection_uuid: str, automation_uuid: str, request: Request, session: SessionDep,
              page: PageDep, status: Annotated[str | None, Query(description="e.g. failed")] = None,
              trigger: Annotated[str | None, Query(description="schedule, manual, chain, catch_up")] = None,
              ) -> RunListResponse:
    """An automation's runs, newest first."""
    result, automation = runs.list_runs(session, connection_uuid, automation_uuid, page, status=status,
                                        trigger=trigger)
    items = [run_public(r, automation.uuid) for r in result.items]
    return RunListResponse(runs=items, pagination=pagination(request.url, result))


@router.get(f"{V3}/runs/{{run_uuid}}", response_model=RunResponse)
def run_by_uuid(run_uuid: str, session: SessionDep) -> RunResponse:
    """One run, whichever automation it belongs to."""
    run = get_run(session, run_uuid)
    return RunResponse(run=run_public(run, run.automation.uuid))


@router.get(f"{ONE}/schedule", response_model=SchedulePreview)
def schedule_preview(connection_uuid: str, automation_uuid: str, session: SessionDep,
                     count: Annotated[int, Query(ge=1, le=operations.MAX_PREVIEW)] = 10) -> SchedulePreview:
    """The next N fire times (1..100, default 10) in the automation's time zone."""
    automation, _ = operations.automation_details(session, connection_uuid, automation_uuid)
    schedule = schedule_of(automation)
    return SchedulePreview(next_runs=operations.preview(automation, count), checkOnText=schedule.text,
                           time_zone=automation.time_zone)
