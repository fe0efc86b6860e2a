"""Operator endpoints: pause, resume, trigger now, run history, one run, next fire times."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from api.deps import RedisDep, SessionDep
from api.openapi import errors, link, with_links
from api.pagination import pagination
from api.query import AutomationUuid, ConnectionUuid, RunPage, RunStatus, RunTrigger, RunUuid
from api.routes import V3, commit
from api.routes.automations import TRIGGER_LINKS
from models.scheduling import schedule_of
from models.schemas.automations import AutomationDetailsResponse, PauseBody
from models.schemas.runs import RunListResponse, RunResponse, SchedulePreview
from models.store import operations
from models.store.lookup import get_run
from tasks import manual_runs as runs
from tasks.render import automation_details, run_public

router = APIRouter(tags=["operations"])
ONE = f"{V3}/integration/{{connection_uuid}}/automation/{{automation_uuid}}"
RUN_LINKS = {"run": link("run_by_uuid", "the run just queued", run_uuid="$response.body#/run/uuid")}


@router.post(f"{ONE}/pause", response_model=AutomationDetailsResponse, operation_id="pause_automation",
             responses={**errors(401, 404, 409, 422), **with_links(200, TRIGGER_LINKS)})
def pause(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, session: SessionDep,
          client: RedisDep,
          body: Annotated[PauseBody | None, Body()] = None) -> AutomationDetailsResponse:
    """Pause with a comment (`{"comment": "..."}`); beat stops dispatching it at once."""
    comment = body.comment if body else None
    automation, connection = operations.pause(session, connection_uuid, automation_uuid, comment)
    commit(session, client)
    return AutomationDetailsResponse(integration_automation=automation_details(automation, connection))


@router.post(f"{ONE}/resume", response_model=AutomationDetailsResponse, operation_id="resume_automation",
             responses={**errors(401, 404, 409), **with_links(200, TRIGGER_LINKS)})
def resume(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, session: SessionDep,
           client: RedisDep) -> AutomationDetailsResponse:
    """Resume: ACTIVE, next due at the schedule's first slot from now."""
    automation, connection = operations.resume(session, connection_uuid, automation_uuid)
    commit(session, client)
    return AutomationDetailsResponse(integration_automation=automation_details(automation, connection))


@router.post(f"{ONE}/run", status_code=202, response_model=RunResponse, operation_id="trigger_now",
             responses={**errors(401, 404, 409, 503, e503="the broker (Redis) is unavailable; the run is "
                                 "recorded failed"), **with_links(202, RUN_LINKS)})
def trigger_now(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, session: SessionDep,
                client: RedisDep) -> JSONResponse:
    """Trigger now: a queued manual run (a paused or disabled automation's run ends skipped)."""
    run, automation = runs.queue_manual_run(session, connection_uuid, automation_uuid)
    runs.dispatch_run(session, run, automation, client)
    body = RunResponse(run=run_public(run, automation.uuid))
    return JSONResponse(status_code=202, content=body.model_dump())


@router.get(f"{ONE}/runs", response_model=RunListResponse, operation_id="list_runs",
            responses=errors(401, 404, 422))
def list_runs(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, request: Request,
              session: SessionDep, page: RunPage, status: Annotated[RunStatus, Query()] = None,
              trigger: Annotated[RunTrigger, Query()] = None) -> RunListResponse:
    """An automation's runs, newest first."""
    result, automation = runs.list_runs(session, connection_uuid, automation_uuid, page, status=status,
                                        trigger=trigger)
    items = [run_public(r, automation.uuid) for r in result.items]
    return RunListResponse(runs=items, pagination=pagination(request.url, result))


@router.get(f"{V3}/runs", response_model=RunListResponse, operation_id="list_all_runs",
            responses=errors(401, 422))
def list_all_runs(request: Request, session: SessionDep, page: RunPage,
                  status: Annotated[RunStatus, Query()] = None,
                  trigger: Annotated[RunTrigger, Query()] = None) -> RunListResponse:
    """Runs of every automation, newest first: `?status=deferred` lists the runs waiting for a partner's
    limits (with `resume_at`), `?status=running` those going on now."""
    result = runs.list_all_runs(session, page, status=status, trigger=trigger)
    items = [run_public(r, r.automation.uuid) for r in result.items]
    return RunListResponse(runs=items, pagination=pagination(request.url, result))


@router.get(f"{V3}/runs/{{run_uuid}}", response_model=RunResponse, operation_id="run_by_uuid",
            responses=errors(401, 404))
def run_by_uuid(run_uuid: RunUuid, session: SessionDep) -> RunResponse:
    """One run, whichever automation it belongs to."""
    run = get_run(session, run_uuid)
    return RunResponse(run=run_public(run, run.automation.uuid))


@router.get(f"{ONE}/schedule", response_model=SchedulePreview, operation_id="schedule_preview",
            responses=errors(401, 404, 422))
def schedule_preview(connection_uuid: ConnectionUuid, automation_uuid: AutomationUuid, session: SessionDep,
                     count: Annotated[int, Query(ge=1, le=operations.MAX_PREVIEW)] = 10) -> SchedulePreview:
    """The next N fire times (1..100, default 10) in the automation's time zone."""
    automation, _ = operations.automation_details(session, connection_uuid, automation_uuid)
    schedule = schedule_of(automation)
    return SchedulePreview(next_runs=operations.preview(automation, count), checkOnText=schedule.text,
                           time_zone=automation.time_zone)
