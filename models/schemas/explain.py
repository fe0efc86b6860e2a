"""The explain request and answer (DESIGN "Explain"): shared by the API route and the command line."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.schemas.automations import Criteria

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class ExplainRequest(BaseModel):
    """POST .../explain: every key optional. `records` to explain instead of fetching them (at most
    MAX_LIMIT), a criteria draft to try beside the stored criteria, and how many records to examine."""

    model_config = ConfigDict(extra="ignore")

    records: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_LIMIT, description="records to explain; without them, those the next run "
        "would fetch (since the watermark, applies_to_function)")
    #: A draft of the criteria, validated as a PATCH validates them (the rules by the server: see
    #: x-server-validated-fields); the answer then also says what the stored criteria decide.
    additional_criteria_details: Criteria = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="at most this many records examined")


class RuleVerdict(BaseModel):
    """One rule on one record: the value seen (`missing` when the field is absent) and the verdict."""

    field_name: str
    operator: str
    value: Any = None
    actual: Any = None
    missing: bool
    matched: bool


class GroupVerdict(BaseModel):
    """One group on one record: its verdict and its rules'."""

    group_condition: str
    matched: bool
    rules: list[RuleVerdict]


class RecordVerdict(BaseModel):
    """One record: the run's verdict; with a draft, `stored_matched` is the stored criteria's (else null)."""

    id: Any = None
    matched: bool
    stored_matched: bool | None = None
    groups: list[GroupVerdict]


class Explanation(BaseModel):
    """What the next run would decide on these records; `skip_reason` says why it would not run at all
    (paused, connection or partner function disabled), null when it would."""

    trigger_condition_text: str
    source: Literal["fetched", "given"]
    records_examined: int
    records_matched: int
    ignore_threshold: int
    would_invoke: bool
    batches: int
    skip_reason: str | None = None
    records: list[RecordVerdict]


class ExplainResponse(BaseModel):
    """`{"explain": {...}}`."""

    explain: Explanation
