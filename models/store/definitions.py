"""The parts of an automation definition that need parsing: schedule, criteria, partner function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.connection import Connection
from models.criteria import Criteria, compile_problems, parse_criteria
from models.errors import DefinitionError
from models.partner_function import PartnerFunction
from models.schedule import Schedule, parse_schedule
from models.schemas.fields import check_json
from models.store.lookup import is_uuid

INTEGRATION = "integration"
DETAILS = "integration.automation_details"
SCHEDULE_FIELDS = frozenset({"check_on", "custom_day", "custom_time", "time_zone"})


def blank_to_none(value: str | None) -> str | None:
    """Schedule fields sent as "" mean "not set"."""
    return value if value is not None and value.strip() else None


def parse_definition_schedule(values: dict[str, Any], anchor: datetime, default_timezone: str) -> Schedule:
    """Parse check_on/custom_day/custom_time/time_zone; errors name `integration.automation_details.*`."""
    try:
        return parse_schedule(
            values.get("check_on") or "", blank_to_none(values.get("custom_day")),
            blank_to_none(values.get("custom_time")), blank_to_none(values.get("time_zone")),
            anchor, default_timezone,
        )
    except DefinitionError as exc:
        raise exc.prefixed(DETAILS) from None


def parse_definition_criteria(groups: Any, enabled: bool) -> Criteria:
    """Parse and compile additional_criteria_details; errors name
    `integration.additional_criteria_details.*`."""
    check_json(groups, f"{INTEGRATION}.additional_criteria_details")
    try:
        criteria = parse_criteria(groups, enabled)
        problems = compile_problems(criteria)  # compiled now, as the worker will: never a failure at run time
        if problems:
            raise DefinitionError(problems[0].field, problems[0].message, *problems[1:])
    except DefinitionError as exc:
        raise exc.prefixed(INTEGRATION) from None
    return criteria


def resolve_partner_function(session: Session, connection: Connection, ref: str) -> PartnerFunction:
    """perform_action by UUID or by name, among this connection's partner functions only."""
    field = f"{DETAILS}.perform_action"
    text = ref.strip()
    if not text:
        raise DefinitionError(field, "is required: the UUID or the name of a partner function")
    base = select(PartnerFunction).where(PartnerFunction.connection_id == connection.id)
    if is_uuid(text):
        found = session.scalar(base.where(PartnerFunction.uuid == text.lower()))
        if found is not None:
            return found
    matches = session.scalars(base.where(PartnerFunction.name == text)).all()
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DefinitionError(field, f"'{text}' names no partner function of this connection")
    raise DefinitionError(field, f"'{text}' names {len(matches)} partner functions of this connection; "
                                 "give its UUID")


def apply_schedule(automation: Automation, schedule: Schedule, values: dict[str, Any]) -> None:
    """Store the schedule as given and as parsed."""
    automation.check_on = str(values.get("check_on") or "").strip()
    automation.custom_day = blank_to_none(values.get("custom_day"))
    automation.custom_time = blank_to_none(values.get("custom_time"))
    automation.time_zone = schedule.time_zone
    automation.schedule_kind = schedule.kind
    automation.schedule = schedule.to_dict()
    automation.check_on_minutes = schedule.check_on_minutes


def apply_criteria(automation: Automation, criteria: Criteria) -> None:
    """Store the criteria as parsed (their stored form re-parses to the same text)."""
    automation.additional_criteria = criteria.enabled
    automation.criteria = criteria.to_list()


def apply_partner_function(automation: Automation, pf: PartnerFunction) -> None:
    """perform_action is stored as the UUID, whatever the request named it by."""
    automation.perform_action = pf.uuid
    automation.partner_function_id = pf.id
    automation.partner_function = pf
