"""Automations: create and update from the seed payloads, computing next_run_at in the same transaction."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import ACTIVE, Automation
from models.base import new_uuid, utcnow
from models.connection import Connection
from models.errors import ConflictError
from models.scheduling import next_run_at
from models.schemas.automations import AutomationCreate, AutomationUpdate
from models.store.definitions import (
    DETAILS,
    SCHEDULE_FIELDS,
    apply_criteria,
    apply_partner_function,
    apply_schedule,
    parse_definition_criteria,
    parse_definition_schedule,
    resolve_partner_function,
)
from models.store.lookup import get_automation, get_connection
from models.store.validation import Problems

log = logging.getLogger(__name__)

#: Plain fields of automation_details and the value stored when a request leaves them out (or blank).
DEFAULTS: dict[str, Any] = {
    "display_name": None, "description_enabled": False, "description": None, "another_automation": None,
    "applies_to_function": "all", "automation_type": None, "direction": None,
    "do_not_over_write_latest_data": False, "ignore_threshold": 1, "since_last_look_up": True,
    "property_name": None, "jitter_s": 0,
}
REQUIRED = ("name", "code", "applies_to", "check_on", "perform_action")


def create_automation(session: Session, connection_uuid: str, payload: AutomationCreate,
                      default_timezone: str, now: datetime | None = None) -> tuple[Automation, Connection]:
    """Store a new ACTIVE automation with its parsed schedule and criteria and its first next_run_at."""
    connection = get_connection(session, connection_uuid)
    now = now or utcnow()
    body = payload.integration
    values = body.automation_details.model_dump()
    groups = body.additional_criteria_details
    enabled = values["additional_criteria"]
    problems = Problems()
    schedule = problems.attempt(lambda: parse_definition_schedule(values, now, default_timezone))
    criteria = problems.attempt(
        lambda: parse_definition_criteria(groups, bool(groups) if enabled is None else enabled))
    pf = problems.attempt(lambda: resolve_partner_function(session, connection, values["perform_action"]))
    problems.raise_if_any()
    assert schedule is not None and criteria is not None and pf is not None
    check_code_free(session, connection, values["code"], None)
    automation = Automation(uuid=new_uuid(), connection_id=connection.id, connection=connection,
                            status=ACTIVE, created_at=now, updated_at=now, name=values["name"],
                            code=values["code"], applies_to=values["applies_to"])
    assign_plain(automation, values)
    apply_schedule(automation, schedule, values)
    apply_criteria(automation, criteria)
    apply_partner_function(automation, pf)
    automation.next_run_at = next_run_at(automation, now)
    session.add(automation)
    session.flush()
    log.info("created automation %s on connection %s, next run %s", automation.uuid, connection.uuid,
             automation.next_run_at)
    return automation, connection


def update_automation(session: Session, connection_uuid: str, automation_uuid: str, payload: AutomationUpdate,
                      default_timezone: str, now: datetime | None = None) -> tuple[Automation, Connection]:
    """Change only what the request sends; a new schedule or jitter recomputes next_run_at."""
    connection = get_connection(session, connection_uuid)
    automation = get_automation(session, connection, automation_uuid)
    now = now or utcnow()
    body = payload.integration
    details = body.automation_details
    values = {f: getattr(details, f) for f in details.model_fields_set} if details else {}
    problems = Problems()
    for field in REQUIRED:
        if field in values and values[field] is None:
            problems.add(f"{DETAILS}.{field}", "cannot be empty")
    parsed = _parse_update(session, automation, connection, values, body.additional_criteria_details,
                           default_timezone, now, problems)
    problems.raise_if_any()
    if values.get("code") and values["code"] != automation.code:
        check_code_free(session, connection, values["code"], automation.id)
    _apply_update(automation, values, parsed)
    if parsed["schedule"] is not None or "jitter_s" in values:
        automation.next_run_at = next_run_at(automation, now)
    session.flush()
    log.info("updated automation %s (%s)", automation.uuid, ", ".join(sorted(values)) or "criteria")
    return automation, connection


def _parse_update(session: Session, automation: Automation, connection: Connection, values: dict[str, Any],
                  groups: list[Any] | None, default_timezone: str, now: datetime,
                  problems: Problems) -> dict[str, Any]:
    """Parse whichever of schedule, criteria and perform_action the update touches."""
    parsed: dict[str, Any] = {"schedule": None, "criteria": None, "pf": None}
    if SCHEDULE_FIELDS & values.keys():
        merged = {f: values[f] if f in values else getattr(automation, f) for f in SCHEDULE_FIELDS}
        parsed["schedule"] = problems.attempt(
            lambda: parse_definition_schedule(merged, now, default_timezone))
    if groups is not None or values.get("additional_criteria") is not None:
        enabled = values.get("additional_criteria")
        flag = automation.additional_criteria if enabled is None else enabled
        source = automation.criteria if groups is None else groups
        parsed["criteria"] = problems.attempt(lambda: parse_definition_criteria(source, flag))
    if values.get("perform_action") is not None:
        ref = values["perform_action"]
        parsed["pf"] = problems.attempt(lambda: resolve_partner_function(session, connection, ref))
    return parsed


def _apply_update(automation: Automation, values: dict[str, Any], parsed: dict[str, Any]) -> None:
    """Write the validated update onto the row."""
    for field in ("name", "code", "applies_to"):
        if values.get(field) is not None:
            setattr(automation, field, values[field])
    assign_plain(automation, {f: v for f, v in values.items() if f in DEFAULTS})
    if parsed["schedule"] is not None:
        merged = {f: values[f] if f in values else getattr(automation, f) for f in SCHEDULE_FIELDS}
        apply_schedule(automation, parsed["schedule"], merged)
    if parsed["criteria"] is not None:
        apply_criteria(automation, parsed["criteria"])
    if parsed["pf"] is not None:
        apply_partner_function(automation, parsed["pf"])


def assign_plain(automation: Automation, values: dict[str, Any]) -> None:
    """Set the plain fields present in `values`; a missing or blank one takes its default."""
    for field, default in DEFAULTS.items():
        if field in values:
            value = values[field]
            setattr(automation, field, default if value is None else value)


def check_code_free(session: Session, connection: Connection, code: str, own_id: int | None) -> None:
    """An automation code is unique per connection: a clash is a 409 naming the code."""
    clash = session.scalar(
        select(Automation.id).where(Automation.connection_id == connection.id, Automation.code == code)
    )
    if clash is not None and clash != own_id:
        raise ConflictError(f"{DETAILS}.code", f"an automation with code '{code}' already exists on this "
                                                "connection")
