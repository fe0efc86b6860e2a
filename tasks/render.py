"""Rows to the public shapes: the seeds' keys, values as strings, credentials masked."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis

from models.automation import Automation
from models.connection import Connection
from models.criteria import parse_criteria
from models.errors import CredentialError, DefinitionError
from models.limits import limits_for
from models.partner_function import PartnerFunction
from models.run import Run
from models.schedule import Schedule
from models.schemas.automations import AutomationDetails, AutomationPublic
from models.schemas.connections import ConnectionDetails, ConnectionPublic
from models.schemas.health import HealthPublic
from models.schemas.partner_functions import PartnerFunctionPublic
from models.schemas.runs import RunPublic
from tasks import health_view
from tasks.budget import Budget, Scope

log = logging.getLogger(__name__)


def flag(value: bool) -> str:
    """Booleans as the seeds show them: "true" / "false"."""
    return "true" if value else "false"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the offset, or None."""
    return value.isoformat() if value is not None else None


def masked(connection: Connection, name: str, secret_key: str) -> str | None:
    """`****` and the last 4 characters; when no key of SECRET_KEY decrypts the stored value, the reason
    in its place ("stored credentials cannot be decrypted with this SECRET_KEY"), not a mask that hides it."""
    try:
        return connection.masked(name, secret_key)
    except CredentialError as exc:
        log.warning("credential %s of connection %s: %s", name, connection.uuid, exc)
        return str(exc)


def connection_public(connection: Connection, secret_key: str) -> ConnectionPublic:
    """The seed 000 connection object."""
    return ConnectionPublic(
        status=connection.status,
        uuid=connection.uuid,
        integration_partner=connection.provider,
        remote_instance_id=connection.remote_instance_id,
        remote_instance_name=connection.remote_instance_name,
        client_id=connection.client_id,
        client_secret=masked(connection, "client_secret", secret_key),
        access_token=masked(connection, "access_token", secret_key),
        refresh_token=masked(connection, "refresh_token", secret_key),
    )


def connection_details(connection: Connection, secret_key: str,
                       budget: dict[str, Any] | None = None) -> ConnectionDetails:
    """The seed keys plus the non-secret fields, the limits in force and (details) the budget's state."""
    c = connection
    limits = limits_for(c.provider, c.rate_limits)
    return ConnectionDetails(
        **connection_public(c, secret_key).model_dump(),
        provider_name=c.provider_name, remote_instance_code=c.remote_instance_code,
        remote_instance_display=c.remote_instance_display, token_type=c.token_type,
        expires_in=c.expires_in, account_server=c.account_server, api_domain=c.api_domain,
        user_name=c.user_name, require_authentication=flag(c.require_authentication), state=c.state,
        company_file=c.company_file, company_name=c.company_name, suspended=flag(c.suspended),
        needs_reconnect=flag(c.needs_reconnect), created_at=iso(c.created_at) or "",
        updated_at=iso(c.updated_at) or "",
        rate_limits={**limits.public(), "overrides": dict(c.rate_limits or {})}, budget=budget,
    )


def budget_state(connection: Connection, client: redis.Redis) -> dict[str, Any] | None:
    """The connection's budget now (used this minute, today, in flight, paused until); None when Redis
    cannot say (the details are answered anyway)."""
    limits = limits_for(connection.provider, connection.rate_limits)
    scope = Scope(connection.uuid, connection.provider, limits, connection.client_id,
                  connection.remote_instance_id)
    try:
        return Budget(scope, client).state()
    except (redis.RedisError, OSError) as exc:
        log.warning("connection %s: budget state unavailable (%s)", connection.uuid, type(exc).__name__)
        return None


def partner_function_public(pf: PartnerFunction, connection: Connection) -> PartnerFunctionPublic:
    """The seed's 15-key partner function object; provider_name is the connection's provider code."""
    return PartnerFunctionPublic(
        uuid=pf.uuid, name=pf.name, description=pf.description, direction=pf.direction,
        event_name=pf.event_name, provider_name=connection.provider, object_name=pf.object_name,
        mapping_id=pf.mapping_id, enabled=flag(pf.enabled), pre_run_script_id=pf.pre_run_script_id,
        post_run_script_id=pf.post_run_script_id, tag=pf.tag, created=iso(pf.created_at) or "",
        updated=iso(pf.updated_at) or "", object_mapping=pf.object_mapping,
    )


def criteria_text(automation: Automation) -> str:
    """trigger_condition_text, rebuilt from the stored (already validated) criteria."""
    try:
        return parse_criteria(automation.criteria, automation.additional_criteria).text
    except (DefinitionError, ValueError, TypeError):
        log.exception("stored criteria of automation %s do not parse", automation.uuid)
        return ""


def perform_action_text(automation: Automation) -> str:
    """performActionText: which partner function the automation runs."""
    pf = automation.partner_function
    if pf is not None:
        return f"Run partner function {pf.name}"
    return f"Run partner function {automation.perform_action}" if automation.perform_action else ""


def custom_day_time(automation: Automation) -> str | None:
    """custom_day_time: "thursday 06:45:23" (whichever parts are set)."""
    parts = [p for p in (automation.custom_day, automation.custom_time) if p]
    return " ".join(parts) if parts else None


def automation_public(automation: Automation, connection: Connection) -> AutomationPublic:
    """The seed's 21-key automation object."""
    a = automation
    return AutomationPublic(
        check_on=a.check_on, check_on_minutes=str(a.check_on_minutes),
        additional_criteria=flag(a.additional_criteria), applies_to=a.applies_to,
        applies_to_function=a.applies_to_function, automation_type=a.automation_type, code=a.code,
        custom_day=a.custom_day, custom_day_time=custom_day_time(a), custom_time=a.custom_time,
        description=a.description, direction=a.direction, display_name=a.display_name, name=a.name,
        perform_function=a.perform_action, provider=connection.provider, status=a.status, uuid=a.uuid,
        trigger_condition_text=criteria_text(a), performActionText=perform_action_text(a),
        checkOnText=Schedule.from_dict(a.schedule).text,
    )


def automation_details(automation: Automation, connection: Connection) -> AutomationDetails:
    """The seed keys plus the stored settings (as a request sends them) and the run state."""
    a = automation
    return AutomationDetails(
        **automation_public(a, connection).model_dump(),
        time_zone=a.time_zone, next_run_at=iso(a.next_run_at), last_run_at=iso(a.last_run_at),
        status_comment=a.status_comment, jitter_s=a.jitter_s, another_automation=a.another_automation,
        description_enabled=flag(a.description_enabled),
        do_not_over_write_latest_data=flag(a.do_not_over_write_latest_data),
        ignore_threshold=str(a.ignore_threshold), since_last_look_up=flag(a.since_last_look_up),
        property_name=a.property_name, additional_criteria_details=list(a.criteria or []),
        created_at=iso(a.created_at) or "", updated_at=iso(a.updated_at) or "",
        health=HealthPublic(**health_view.health(a, connection)),
    )


def run_public(run: Run, automation_uuid: str) -> RunPublic:
    """The run object of DESIGN.md."""
    return RunPublic(
        uuid=run.uuid, automation_uuid=automation_uuid, scheduled_for=iso(run.scheduled_for) or "",
        trigger=run.trigger, status=run.status, reason=run.reason, records_fetched=run.records_fetched,
        records_matched=run.records_matched, records_sent=run.records_sent, attempts=run.attempts,
        started_at=iso(run.started_at), finished_at=iso(run.finished_at), duration_ms=run.duration_ms,
        error=run.error, budget_wait_ms=run.budget_wait_ms or 0, throttled=run.throttled or 0,
        resume_at=iso(run.resume_at),
    )
