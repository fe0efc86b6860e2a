"""Invoking the partner function: `POST partner-functions/{uuid}/invoke`, one call per batch.

Each batch carries `Idempotency-Key: <run uuid>:<batch index>`, identical on every retry and on a
redelivered run, so the partner applies each batch once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.errors import TransientIntegrationError
from tasks.integration_client import IntegrationClient
from tasks.retry import call_with_retries
from tasks.selection import Record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvokeContext:
    """What every batch of a run says about itself (public fields only, never a credential)."""

    partner_function_uuid: str
    partner_function: dict[str, Any]
    automation: dict[str, Any]
    run_uuid: str
    scheduled_for: str
    do_not_over_write_latest_data: bool


def idempotency_key(run_uuid: str, batch_index: int) -> str:
    """The same key for a batch on every try: the partner de-duplicates on it."""
    return f"{run_uuid}:{batch_index}"


def payload(ctx: InvokeContext, records: list[Record], batch_index: int, batch_count: int) -> dict[str, Any]:
    """The invoke body of the contract."""
    return {
        "partner_function": ctx.partner_function,
        "automation": ctx.automation,
        "run": {"uuid": ctx.run_uuid, "scheduled_for": ctx.scheduled_for,
                "batch_index": batch_index, "batch_count": batch_count},
        "records": records,
        "do_not_over_write_latest_data": ctx.do_not_over_write_latest_data,
    }


def invoke_batch(client: IntegrationClient, ctx: InvokeContext, records: list[Record], batch_index: int,
                 batch_count: int,
                 on_retry: Callable[[TransientIntegrationError], None] | None = None) -> None:
    """Send one batch, retrying transient failures with the same Idempotency-Key."""
    body = payload(ctx, records, batch_index, batch_count)
    headers = {"Idempotency-Key": idempotency_key(ctx.run_uuid, batch_index)}
    what = f"invoke batch {batch_index + 1}/{batch_count} of run {ctx.run_uuid}"
    call_with_retries(
        lambda: client.post_json("invoke_path", what, body, headers,
                                 partner_function_uuid=ctx.partner_function_uuid),
        what, on_retry=on_retry)
