"""Automation payloads (seed 000 create, seed 001 update) and the seed's 21-key response object."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema

from models.schemas.common import Pagination
from models.schemas.fields import (
    AppliesToFunction,
    CheckOn,
    Count,
    Direction,
    Flag,
    KeptCheckOn,
    KeptPerformAction,
    KeptStr128,
    KeptStr255,
    LongText,
    PerformAction,
    Str16,
    Str32,
    Str64,
    Str128,
    Str255,
)
from models.schemas.health import HealthPublic, RecentRun

#: Criteria groups: their structure here, their rules (operators, values, patterns) checked and compiled by
#: the server when stored, so a 422 may name any part of them (see x-server-validated-fields).
CRITERIA_SCHEMA = {
    "anyOf": [{"type": "array", "items": {"type": "object", "properties": {
        "group_condition": {"type": "string", "description": "AND or OR: joins this group to the next"},
        "rules": {"type": "array", "items": {"type": "object", "properties": {
            "field_name": {"type": "string"}, "operator": {"type": "string"}, "value": {},
            "condition": {"type": "string", "description": "AND or OR: joins this rule to the next"},
            "case_sensitive": {"type": "boolean"}}}},
    }}}, {"type": "null"}],
    "description": "AND/OR groups of rules over a record's fields (docs/schedules-and-criteria.md); each "
                   "group has group_condition and a non-empty list of rules {field_name, operator, value, "
                   "condition}",
}
Criteria = Annotated[list[Any] | None, WithJsonSchema(CRITERIA_SCHEMA)]


class AutomationDetailsFields(BaseModel):
    """Every settable field of `automation_details`; computed ones are never read from a request."""

    model_config = ConfigDict(extra="ignore")

    display_name: Str255 | None = None
    description_enabled: Flag = None
    description: LongText | None = None
    another_automation: Str255 | None = None
    applies_to_function: AppliesToFunction = None
    automation_type: Str64 | None = None
    direction: Direction = None
    custom_day: Str32 | None = None  # monday..sunday, or the day of the month of a monthly schedule
    custom_time: Str16 | None = None  # HH:MM or HH:MM:SS
    time_zone: Str64 | None = None  # an IANA name; DEFAULT_TIMEZONE when not given
    jitter_s: Count = None
    do_not_over_write_latest_data: Flag = None
    ignore_threshold: Count = None
    since_last_look_up: Flag = None
    additional_criteria: Flag = None
    property_name: Str255 | None = None


class AutomationDetailsCreate(AutomationDetailsFields):
    """Create: name, code, applies_to, check_on and perform_action are required."""

    name: Str255
    code: Str255
    applies_to: Str128
    check_on: CheckOn
    perform_action: PerformAction


class AutomationDetailsUpdate(AutomationDetailsFields):
    """Update: every field optional; only the fields sent change."""

    name: KeptStr255 = None
    code: KeptStr255 = None
    applies_to: KeptStr128 = None
    check_on: KeptCheckOn = None
    perform_action: KeptPerformAction = None


class AutomationCreateBody(BaseModel):
    """The `integration` object of a create."""

    model_config = ConfigDict(extra="ignore")

    automation_details: AutomationDetailsCreate
    additional_criteria_details: Criteria = None


class AutomationUpdateBody(BaseModel):
    """The `integration` object of an update."""

    model_config = ConfigDict(extra="ignore")

    automation_details: AutomationDetailsUpdate | None = None
    additional_criteria_details: Criteria = None


class AutomationCreate(BaseModel):
    """POST .../automation: `{"integration": {"automation_details", "additional_criteria_details"}}`."""

    model_config = ConfigDict(extra="ignore")

    integration: AutomationCreateBody


class AutomationUpdate(BaseModel):
    """PATCH .../automation/{uuid}: the create shape, every field optional."""

    model_config = ConfigDict(extra="ignore")

    integration: AutomationUpdateBody


class PauseBody(BaseModel):
    """POST .../pause: why the automation is paused (shown as status_comment)."""

    model_config = ConfigDict(extra="ignore")

    comment: LongText | None = None


class AutomationPublic(BaseModel):
    """The seed's 21-key `integration_automation` object (create and update answers)."""

    check_on: str
    check_on_minutes: str
    additional_criteria: str
    applies_to: str
    applies_to_function: str
    automation_type: str | None
    code: str
    custom_day: str | None
    custom_day_time: str | None
    custom_time: str | None
    description: str | None
    direction: str | None
    display_name: str | None
    name: str
    perform_function: str | None
    provider: str
    status: str
    uuid: str
    trigger_condition_text: str
    performActionText: str  # the seed spells it in camelCase
    checkOnText: str  # the seed spells it in camelCase


class AutomationDetails(AutomationPublic):
    """The list/details object: the seed keys plus the stored settings and the run state."""

    time_zone: str
    next_run_at: str | None
    last_run_at: str | None
    status_comment: str | None
    jitter_s: int
    another_automation: str | None
    description_enabled: str
    do_not_over_write_latest_data: str
    ignore_threshold: str
    since_last_look_up: str
    property_name: str | None
    additional_criteria_details: list[Any]
    created_at: str
    updated_at: str
    health: HealthPublic


class AutomationDescribed(AutomationDetails):
    """Details: also the recent past and near future (the last 10 runs, the next 5 fire times, the runs of
    the last 24 hours per status)."""

    recent_runs: list[RecentRun]
    next_runs: list[str]
    counts_24h: dict[str, int]


class AutomationResponse(BaseModel):
    """Create and update answer."""

    integration_automation: AutomationPublic


class AutomationDetailsResponse(BaseModel):
    """Details, pause and resume answer."""

    integration_automation: AutomationDetails


class AutomationDescribeResponse(BaseModel):
    """Details answer."""

    integration_automation: AutomationDescribed


class AutomationListResponse(BaseModel):
    """List answer (the SDK's IntegrationAutomationListResponseDTO)."""

    integration_automations: list[AutomationDetails]
    pagination: Pagination
