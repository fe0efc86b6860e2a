"""The body of a claimed run: fetch, select, match, invoke in batches, advance the watermark, chain.

The plan (which record ids go in which batch, and the watermark they lead to) is saved with the claim,
before the first batch is sent; a redelivered run reuses it and starts at the first batch the partner has
not acknowledged. A run that sends nothing is recorded and finished in one write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypedDict

from models.errors import TransientIntegrationError
from models.settings import get_settings
from tasks import bookkeeping
from tasks.bookkeeping import RunState
from tasks.chain import chain_next
from tasks.claim import Claim
from tasks.context import RunContext
from tasks.fetch import fetch_records
from tasks.integration_client import IntegrationClient
from tasks.invoke import InvokeContext, invoke_batch
from tasks.predicates import predicate_for
from tasks.selection import Plan, Record, candidates, make_plan, newest_versions, record_id

log = logging.getLogger(__name__)


class Counts(TypedDict):
    """The record counts every outcome of a run carries (passed to Claim.finish as keywords)."""

    records_fetched: int
    records_matched: int


def perform(ctx: RunContext, claim: Claim, keep_lock: Callable[[], object]) -> RunState:
    """Fetch, plan, claim with the plan, send and record the outcome; integration errors propagate."""
    client = IntegrationClient.for_connection(ctx.connection)
    since = ctx.since.at if ctx.since_last_look_up else None
    fetched = newest_versions(fetch_records(client, ctx.applies_to, since, get_settings().fetch_page_size,
                                            claim.retried, claim.next_page))
    stored = claim.stored_plan
    plan = Plan.from_dict(stored) if stored else _new_plan(ctx, fetched)
    counts = Counts(records_fetched=plan.fetched, records_matched=plan.matched)
    if plan.matched < ctx.ignore_threshold:
        reason = f"{plan.matched} matched, fewer than ignore_threshold {ctx.ignore_threshold}"
        return claim.finish("below_threshold", reason=reason, **counts)
    sent = 0
    if plan.batches:  # the plan is saved with the claim, before anything is sent
        run = claim.claim(None if stored else plan.to_dict())
        if run is None:
            return claim.finished_elsewhere()
        sent = _send_batches(client, _invoke_context(ctx, run), plan, run, fetched, keep_lock, claim.retried)
    state = claim.finish("succeeded", watermark=plan.watermark, sent_add=sent, batches_sent=len(plan.batches),
                         **counts)
    return _chain(ctx, state)


def _new_plan(ctx: RunContext, fetched: list[Record]) -> Plan:
    """Select and match the fetched records with the automation's compiled criteria."""
    looked_at = candidates(fetched, ctx.since, ctx.since_last_look_up, ctx.applies_to_function)
    predicate = predicate_for(ctx.additional_criteria, ctx.criteria)
    return make_plan(fetched, looked_at, predicate, ctx.since, get_settings().invoke_batch_size)


def _send_batches(client: IntegrationClient, invoke: InvokeContext, plan: Plan, run: RunState,
                  fetched: list[Record], keep_lock: Callable[[], object],
                  on_retry: Callable[[TransientIntegrationError], None]) -> int:
    """Invoke each batch not yet acknowledged, in order; returns the size of the last (still unrecorded)."""
    by_id = {record_id(r): r for r in fetched}
    count, last = len(plan.batches), 0
    for index in range(run.batches_sent, count):
        records = [by_id[i] for i in plan.batches[index] if i in by_id]
        if index > run.batches_sent:
            keep_lock()
        if records:
            invoke_batch(client, invoke, records, index, count, on_retry)
        if index + 1 < count:  # the last one is recorded with the outcome
            bookkeeping.batch_sent(run.id, index + 1, len(records))
        else:
            last = len(records)
    return last


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
    bookkeeping.set_reason(state.id, reason)
    return RunState(**{**state.__dict__, "reason": state.final_reason(reason)})
