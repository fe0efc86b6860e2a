"""The run task `automations.run(automation_uuid, scheduled_for)`: DESIGN.md "A run", steps 1-7.

Exactly once per slot: the run row is unique per (automation, slot) and claimed while holding the
automation's Redis run lock (value: the slot and a token). A second message for a slot whose run is
going finds the lock held for the same slot and does nothing; a message redelivered after its worker
died takes the lock over and resumes from the first batch not yet acknowledged.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Task

from models import keys
from models.errors import DefinitionError, IntegrationError
from models.settings import get_settings
from tasks import bookkeeping, claim
from tasks.bookkeeping import RunState, Start
from tasks.execution import perform
from tasks.locks import Lock
from tasks.resilience import DatabaseUnavailable, LockUnavailable, ServiceUnavailable, task_countdown_s
from worker.celery_app import app

log = logging.getLogger(__name__)
ACQUIRED, BUSY, OTHER = "acquired", "busy", "other"


@app.task(name="automations.run", bind=True)
def run_automation(self: Task, automation_uuid: str, scheduled_for: str) -> dict[str, Any]:
    """Run one slot of one automation; the result (shown in Flower) is the run's summary, no secrets."""
    delivery = getattr(self.request, "delivery_info", None) or {}
    try:
        return execute(automation_uuid, scheduled_for, redelivered=bool(delivery.get("redelivered")),
                       task_id=self.request.id)
    except ServiceUnavailable as exc:
        raise retry_later(self, automation_uuid, scheduled_for, exc) from exc


def retry_later(task: Task, automation_uuid: str, scheduled_for: str, exc: ServiceUnavailable) -> Exception:
    """Redis or the database blinked: the task runs again later (same task id, so it takes its own lock
    back and resumes from the saved plan); after RETRY_ATTEMPTS tries the slot is failed if it can be."""
    retries, limit = task.request.retries, get_settings().retry_attempts
    if retries >= limit:
        log.error("run of automation %s slot %s: %s; giving up after %d task retries",
                  automation_uuid, scheduled_for, exc, retries)
        reason = f"Redis or the database stayed unavailable after {retries} retries"
        bookkeeping.fail_unfinished(automation_uuid, parse_slot(scheduled_for), reason, str(exc))
        return exc
    countdown = task_countdown_s(retries)
    log.warning("run of automation %s slot %s: %s; task retry %d/%d in %.1f s",
                automation_uuid, scheduled_for, exc, retries + 1, limit, countdown)
    return task.retry(exc=exc, countdown=countdown, max_retries=limit, throw=False)


def execute(automation_uuid: str, scheduled_for: str, redelivered: bool = False,
            task_id: str | None = None) -> dict[str, Any]:
    """The run, with one log line at its start and one at its end."""
    started = time.monotonic()
    slot = parse_slot(scheduled_for)
    log.info("run start: automation %s slot %s%s", automation_uuid, slot.isoformat(),
             " (redelivered)" if redelivered else "")
    summary = _execute(automation_uuid, slot, redelivered, task_id)
    log.info("run end: automation %s slot %s run %s status %s fetched %s matched %s sent %s attempts %s "
             "in %d ms%s", automation_uuid, slot.isoformat(), summary.get("run_uuid"), summary["status"],
             summary.get("records_fetched"), summary.get("records_matched"), summary.get("records_sent"),
             summary.get("attempts"), (time.monotonic() - started) * 1000,
             f" ({summary['reason']})" if summary.get("reason") else "")
    return summary


def parse_slot(value: str) -> datetime:
    """The slot argument (ISO 8601) as aware UTC."""
    slot = datetime.fromisoformat(value)
    return slot.replace(tzinfo=UTC) if slot.tzinfo is None else slot.astimezone(UTC)


def _execute(automation_uuid: str, slot: datetime, redelivered: bool, task_id: str | None) -> dict[str, Any]:
    """Take the automation's run lock, then run; without it, record why nothing ran."""
    lock = Lock(keys.run_lock(automation_uuid), get_settings().run_lock_ttl_s)
    token = f"{slot.isoformat()}|{task_id or '-'}|{uuid.uuid4().hex}"
    try:
        outcome = _acquire(lock, token, slot, redelivered, task_id)
    except redis.RedisError as exc:  # nothing claimed yet: the task is retried later
        raise LockUnavailable(f"run lock {lock.key}: {type(exc).__name__}: {exc}") from exc
    if outcome == ACQUIRED:
        try:
            return _run_holding_lock(automation_uuid, slot, lock, token)
        finally:
            _release(lock, token, automation_uuid, slot)
    if outcome == BUSY:
        start = bookkeeping.start(automation_uuid, slot, claim=False)
        return summarize(automation_uuid, slot, start, note="this run is in progress on another worker")
    start = bookkeeping.start(automation_uuid, slot, claim=False,
                             skip_reason="another run of this automation is still going")
    return summarize(automation_uuid, slot, start)


def _acquire(lock: Lock, token: str, slot: datetime, redelivered: bool, task_id: str | None) -> str:
    """ACQUIRED; BUSY when this slot's run holds it (taken over instead if this is a redelivery or a retry
    of the same task, whose earlier try could not release it); OTHER."""
    for _ in range(3):
        if lock.acquire(token):
            return ACQUIRED
        holder = lock.holder()
        if holder is None:
            continue  # released between our two calls: try again
        if holder.split("|", 1)[0] != slot.isoformat():
            return OTHER
        if (redelivered or _same_task(holder, task_id)) and lock.steal(holder, token):
            log.warning("run lock %s taken over from a dead delivery of slot %s", lock.key, slot.isoformat())
            return ACQUIRED
        return BUSY
    return OTHER


def _same_task(holder: str, task_id: str | None) -> bool:
    """Whether the lock was left by an earlier try of this very task (a Celery retry keeps the task id)."""
    parts = holder.split("|")
    return task_id is not None and len(parts) == 3 and parts[1] == task_id


def _keep_lock(lock: Lock, token: str, automation_uuid: str, slot: datetime) -> bool:
    """Extend the run lock between batches; a Redis error is logged, not fatal: the run row's guarded
    claim keeps the slot single, and the lock's only job left is to keep other slots from overlapping."""
    try:
        return lock.extend(token)
    except redis.RedisError as exc:
        log.warning("run of automation %s slot %s: could not extend run lock %s (%s: %s); carrying on",
                    automation_uuid, slot.isoformat(), lock.key, type(exc).__name__, exc)
        return False


def _release(lock: Lock, token: str, automation_uuid: str, slot: datetime) -> None:
    """Free the run lock; on a Redis error it is left to its TTL (the run's outcome is already recorded)."""
    try:
        lock.release(token)
    except redis.RedisError as exc:
        log.warning("run of automation %s slot %s: could not release run lock %s (%s: %s); its TTL frees it",
                    automation_uuid, slot.isoformat(), lock.key, type(exc).__name__, exc)


def _run_holding_lock(automation_uuid: str, slot: datetime, lock: Lock, token: str) -> dict[str, Any]:
    """Read the definition and the slot's run, then fetch, match, claim and invoke; failures are recorded."""
    found = claim.look_up(automation_uuid, slot)
    ctx, existing = found.context, found.run
    if ctx is None or (existing is not None and existing.finished):
        return summarize(automation_uuid, slot, Start(ctx, existing, False))
    if ctx.skip_reason:
        return summarize(automation_uuid, slot, bookkeeping.start(automation_uuid, slot, claim=True))
    pending = claim.Claim(ctx.automation_id, slot, existing)
    try:
        state = perform(ctx, pending, lambda: _keep_lock(lock, token, automation_uuid, slot))
    except (IntegrationError, DefinitionError) as exc:
        state = pending.finish("failed", reason=failure_reason(exc), error=str(exc))
    except DatabaseUnavailable:
        raise  # the outcome cannot be recorded now: the task is retried and resumes from the saved plan
    except Exception as exc:
        log.exception("run of automation %s slot %s failed unexpectedly", automation_uuid, slot.isoformat())
        pending.finish("failed", reason="internal error", error=f"{type(exc).__name__}: {exc}")
        raise
    return summarize(automation_uuid, slot, Start(ctx, state, True))


def failure_reason(exc: Exception) -> str:
    """The run's reason for a failure, one clear sentence (the details go to `error`)."""
    from models.errors import PermanentIntegrationError, ReconnectRequiredError

    if isinstance(exc, ReconnectRequiredError):
        return "connection needs reconnection: the refresh token was refused (invalid_grant)"
    if isinstance(exc, PermanentIntegrationError):
        return "the integration API refused the request"
    if isinstance(exc, DefinitionError):
        return "the stored definition is invalid"
    return f"the integration API kept failing after {get_settings().retry_attempts} tries"


def summarize(automation_uuid: str, slot: datetime, start: Start, note: str | None = None) -> dict[str, Any]:
    """The task's result: the run's status, counts and reason (never a credential)."""
    out: dict[str, Any] = {"automation_uuid": automation_uuid, "scheduled_for": slot.isoformat()}
    if start.context is None:
        return {**out, "run_uuid": None, "status": "deleted", "reason": "the automation no longer exists"}
    run: RunState | None = start.run
    assert run is not None
    out.update(run_uuid=run.uuid, status=run.status, reason=run.reason, records_fetched=run.records_fetched,
               records_matched=run.records_matched, records_sent=run.records_sent, attempts=run.attempts,
               duration_ms=run.duration_ms, error=run.error)
    if note:
        out["note"] = note
    return out
