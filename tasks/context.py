"""A run's view of its automation, connection and partner function, read once at the start of the run.

Plain values only (no session needed later); the credential stays encrypted until the client uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.automation import ACTIVE, Automation
from models.connection import Connection
from models.partner_function import PartnerFunction
from tasks.selection import Watermark

_PF_FIELDS = ("uuid", "name", "description", "direction", "object_name", "object_mapping", "mapping_id",
              "event_name", "tag", "pre_run_script_id", "post_run_script_id", "enabled")
_AUTOMATION_FIELDS = ("uuid", "name", "display_name", "code", "description", "applies_to",
                      "applies_to_function", "automation_type", "direction", "property_name",
                      "do_not_over_write_latest_data", "ignore_threshold", "since_last_look_up",
                      "perform_action", "another_automation", "check_on", "time_zone")


@dataclass(frozen=True)
class RunContext:
    """Everything a run needs to know about what it runs, as of its start."""

    automation_id: int
    automation_uuid: str
    connection_id: int
    applies_to: str
    applies_to_function: str
    since_last_look_up: bool
    ignore_threshold: int
    do_not_over_write_latest_data: bool
    another_automation: str | None
    additional_criteria: bool
    criteria: list[Any]
    since: Watermark
    skip_reason: str | None
    connection: Connection
    partner_function_uuid: str | None
    partner_function_public: dict[str, Any]
    automation_public: dict[str, Any]


def build_context(auto: Automation) -> RunContext:
    """Snapshot the automation and what it depends on (loaded in the caller's session)."""
    pf = auto.partner_function
    return RunContext(
        automation_id=auto.id, automation_uuid=auto.uuid,
        connection_id=auto.connection_id, applies_to=auto.applies_to,
        applies_to_function=auto.applies_to_function or "all",
        since_last_look_up=bool(auto.since_last_look_up),
        ignore_threshold=1 if auto.ignore_threshold is None else int(auto.ignore_threshold),
        do_not_over_write_latest_data=bool(auto.do_not_over_write_latest_data),
        another_automation=auto.another_automation, additional_criteria=bool(auto.additional_criteria),
        criteria=list(auto.criteria or []),
        since=Watermark(auto.watermark_at or auto.created_at, frozenset(map(str, auto.watermark_ids or [])),
                        Watermark.ahead_of(auto.watermark_ahead), auto.watermark_version or 0),
        skip_reason=skip_reason(auto, auto.connection, pf), connection=auto.connection,
        partner_function_uuid=pf.uuid if pf else None,
        partner_function_public=_public(pf, _PF_FIELDS) if pf else {},
        automation_public={**_public(auto, _AUTOMATION_FIELDS), "connection_uuid": auto.connection.uuid},
    )


def skip_reason(auto: Automation, conn: Connection, pf: PartnerFunction | None) -> str | None:
    """Why the run must not go ahead, or None: paused, connection unusable, partner function off."""
    if auto.status != ACTIVE:
        comment = f": {auto.status_comment}" if auto.status_comment else ""
        return f"automation is paused{comment}"
    if conn.needs_reconnect:
        return "connection needs reconnection (its refresh token was refused)"
    if conn.suspended:
        comment = f": {conn.suspension_comment}" if conn.suspension_comment else ""
        return f"connection is suspended{comment}"
    if conn.status != "ACTIVE":
        return "connection is disabled"
    if pf is None:
        return "partner function is missing (perform_action names none)"
    if not pf.enabled:
        return "partner function is disabled"
    return None


def _public(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes as JSON-ready values."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name, None)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out
