"""The body of a claimed run: fetch, select, match, invoke in batches, advance the watermark, chain.

The plan (which record ids go in which batch, and the watermark they lead to) is saved with the claim,
before the first batch is sent; a redelivered run reuses it and starts at the first batch the partner has
not acknowledged. A run that sends nothing is recorded and finished in one write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TypedDict

from models.base import utcnow
from models.errors import (
    BatchFailed,
    CredentialError,
    DefinitionError,
    IntegrationError,
    PermanentIntegrationError,
    ReconnectRequiredError,
    TransientIntegrationError,
)
from models.run import RunStatus
from models.settings import get_settings
from tasks import run_record
from tasks.chain import chain_next
from tasks.context import RunContext
from tasks.fetch import fetch_records
from tasks.integration_client import IntegrationClient
from tasks.invoke import InvokeContext, invoke_batch
from tasks.predicates import tolerant_predicate_for
from tasks.run_record import Claim
from tasks.run_state import RunState
from tasks.selection import Plan, Record, Watermark, candidates, make_plan, newest_versions, record_id

log = logging.getLogger(__name__)


class Counts(TypedDict):
    """The record counts every outcome of a run carries (passed to Claim.finish as keywords)."""

    records_fetched: int
    records_matched: int


def perform(ctx: RunContext, claim: Claim, guard: Callable[[str], None]) -> RunState:
    """Fetch, plan, claim with the plan, send and record the outcome; integration errors propagate.

    A stored plan is completed as planned: its threshold was met when it was made, and a batch of it may
    already be applied, so neither a new threshold nor a pause changes it (they apply to the next run).
    `guard(what)` raises LockLost when this delivery no longer holds the run lock: checked before each
    effect (saving the plan, each batch).
    """
    client = IntegrationClient.for_connection(ctx.connection)
    claim.usage = client.usage
    stored = claim.stored_plan
    plan = Plan.from_dict(stored) if stored else _new_plan(ctx, _fetch(client, ctx, ctx.since, claim))
    if not stored and plan.matched < ctx.ignore_threshold:
        reason = f"{plan.matched} matched, fewer than ignore_threshold {ctx.ignore_threshold}"
        return claim.finish(RunStatus.BELOW_THRESHOLD, reason=_noted(reason, plan),
                            records_fetched=plan.fetched, records_matched=plan.matched)
    if plan.records is None:  # a plan stored before the versions were kept: fetched again
        again = _fetch(client, ctx, plan.since or ctx.since, claim)
        plan = replace(plan, records={record_id(r): r for r in again})
    counts = Counts(records_fetched=plan.fetched, records_matched=plan.matched)
    sent = 0
    if plan.batches:  # the plan is saved with the claim, before anything is sent
        guard("saving the plan")
        run = claim.claim(None if stored else plan.to_dict())
        if run is None:
            return claim.finished_elsewhere()
        try:
            sent = _send_batches(client, _invoke_context(ctx, run), plan, run, guard, claim.retried)
        except BatchFailed as failed:
            return _after_failed_batch(claim, plan, failed, counts)
    state = claim.finish(RunStatus.SUCCEEDED, reason=_noted(None, plan), watermark=plan.watermark,
                         sent_add=sent, batches_sent=len(plan.batches), **counts)
    return _chain(ctx, state)


def _fetch(client: IntegrationClient, ctx: RunContext, since: Watermark, claim: Claim) -> list[Record]:
    """The candidate records, newest version of each (changed since the watermark with since_last_look_up)."""
    updated_since = since.at if ctx.since_last_look_up else None
    page_size = get_settings().fetch_page_size
    return newest_versions(fetch_records(client, ctx.applies_to, updated_since, page_size, claim.retried,
                                         claim.next_page))


def _new_plan(ctx: RunContext, fetched: list[Record]) -> Plan:
    """Select and match the fetched records with the automation's compiled criteria; the watermark it
    leads to stays WATERMARK_SKEW_S behind now (the run's start)."""
    settings = get_settings()
    looked_at = candidates(fetched, ctx.since, ctx.since_last_look_up, ctx.applies_to_function)
    predicate = tolerant_predicate_for(ctx.additional_criteria, ctx.criteria)
    cap = utcnow() - timedelta(seconds=settings.watermark_skew_s)
    plan = make_plan(fetched, looked_at, predicate, ctx.since, settings.invoke_batch_size, cap)
    if predicate.uncomparable:  # such values do not match their rule; the run says so
        note = (f"{predicate.uncomparable} record value(s) could not be compared and did not match "
                f"(first: {predicate.example})")
        plan = replace(plan, notes=(*plan.notes, note))
    return plan


def _noted(reason: str | None, plan: Plan) -> str | None:
    """The run's reason with the plan's notes (values that could not be compared, say) after it."""
    parts = [p for p in (reason, *plan.notes) if p]
    return "; ".join(parts) if parts else None


def _send_batches(client: IntegrationClient, invoke: InvokeContext, plan: Plan, run: RunState,
                  guard: Callable[[str], None], on_retry: Callable[[TransientIntegrationError], None]) -> int:
    """Invoke each batch not yet acknowledged, in order, with the record versions of the plan; returns
    the size of the last (still unrecorded). Stops (LockLost) once the run lock is not this delivery's.
    """
    by_id = plan.records or {}
    count, last = len(plan.batches), 0
    for index in range(run.batches_sent, count):
        records = [by_id[i] for i in plan.batches[index] if i in by_id]
        guard(f"batch {index + 1}/{count}")
        if records:
            try:
                invoke_batch(client, invoke, records, index, count, on_retry)
            except IntegrationError as exc:
                raise BatchFailed(index, count, exc) from exc
        if index + 1 < count:  # the last one is recorded with the outcome
            run_record.batch_sent(run.id, index + 1, len(records))
        else:
            last = len(records)
    return last


def _after_failed_batch(claim: Claim, plan: Plan, failed: BatchFailed, counts: Counts) -> RunState:
    """A batch could not be sent. Once a plan is stored, its batches are sent as planned and never again
    under other keys:
    - a transient failure (its retries spent) defers the run: it stays unfinished, and is resumed with the
      same Idempotency-Keys (beat's resume sweep, or the automation's next slot), since the partner may
      even have applied the batch whose answer was lost;
    - a refusal (a 4xx) fails the run, and the watermark moves over the batches acknowledged before it,
      so the next run sends none of them again but does send the refused batch and those after it.
    """
    cause = failed.cause
    where = f"batch {failed.index + 1}/{failed.count}"
    if isinstance(cause, TransientIntegrationError) and not isinstance(cause, PermanentIntegrationError):
        return claim.defer(f"{failure_reason(cause)} at {where}; the run resumes with the same "
                           "Idempotency-Keys", str(cause))
    acknowledged = plan.acknowledged(failed.index)
    return claim.finish(RunStatus.FAILED, reason=failure_reason(cause), error=str(cause),
                        watermark=acknowledged, sent_add=0, **counts)


def failure_reason(exc: Exception) -> str:
    """The run's reason for a failure, one clear sentence (the details go to `error`)."""
    if isinstance(exc, ReconnectRequiredError):
        return "connection needs reconnection: the refresh token was refused (invalid_grant)"
    if isinstance(exc, PermanentIntegrationError):
        return "the integration API refused the request"
    if isinstance(exc, DefinitionError):
        return "the stored definition is invalid"
    if isinstance(exc, CredentialError):
        return str(exc)  # stored credentials cannot be decrypted with this SECRET_KEY
    return f"the integration API kept failing after {get_settings().retry_attempts} tries"


def _invoke_context(ctx: RunContext, run: RunState) -> InvokeContext:
    """The run's description sent with every batch."""
    return InvokeContext(ctx.partner_function_uuid or "", ctx.partner_function_public, ctx.automation_public,
                         run.uuid, run.scheduled_for.isoformat(), ctx.do_not_over_write_latest_data)


def _chain(ctx: RunContext, state: RunState) -> RunState:
    """Start the next automation of the chain; its outcome becomes this run's reason."""
    if not ctx.another_automation:
        return state
    try:
        reason = chain_next(state.id, ctx.connection_id, ctx.automation_id, ctx.another_automation)
    except Exception as exc:  # the run itself succeeded; say why its chain did not start
        log.exception("run %s: chain to %r failed", state.uuid, ctx.another_automation)
        reason = f"chain to {ctx.another_automation!r} failed: {type(exc).__name__}"
    run_record.set_reason(state.id, reason)
    return RunState(**{**state.__dict__, "reason": state.final_reason(reason)})
