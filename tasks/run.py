"""The run task `automations.run(automation_uuid, scheduled_for)`: DESIGN.md "A run", steps 1-7.

Exactly once per slot: the run row is unique per (automation, slot) and claimed while holding the
automation's Redis run lock (value: the slot and a token), which a heartbeat keeps alive exactly as long
as its holder lives. Nothing takes over a held lock: a second delivery of a live run answers BUSY and
checks back later; once a dead holder's lock has expired, the next delivery (a redelivery, that check,
beat's resume sweep or the automation's next slot) resumes the run from the first batch not yet
acknowledged, with the same run uuid and Idempotency-Keys.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime
from typing import Any

import redis
from celery import Task, shared_task

from models import keys
from models.base import utcnow
from models.errors import (
    BudgetExceeded,
    CredentialError,
    DefinitionError,
    IntegrationError,
    LockLost,
    LockUnavailable,
    PlanConflict,
    RunFailed,
    ServiceUnavailable,
)
from models.run import RunStatus
from models.settings import get_settings
from tasks import run_record
from tasks.execution import failure_reason, perform
from tasks.locks import Heartbeat, Lock
from tasks.message import RUN_TASK, parse_slot
from tasks.outcome import raise_if_failed
from tasks.resilience import task_countdown_s
from tasks.run_record import Found
from tasks.run_state import RunState

log = logging.getLogger(__name__)
ACQUIRED, BUSY, OTHER = "acquired", "busy", "other"


@shared_task(name=RUN_TASK, bind=True, throws=(RunFailed,))
def run_automation(self: Task, automation_uuid: str, scheduled_for: str) -> dict[str, Any]:
    """Run one slot of one automation; the result (shown in Flower) is the run's summary, no secrets, and
    a failed run's task ends in FAILURE with its reason (tasks/outcome.py)."""
    delivery = getattr(self.request, "delivery_info", None) or {}
    retries, limit = self.request.retries, get_settings().retry_attempts
    try:
        summary = execute(automation_uuid, scheduled_for, redelivered=bool(delivery.get("redelivered")),
                          task_id=self.request.id)
    except ServiceUnavailable as exc:
        # Redis or the database blinked: the task runs again later and resumes from the saved plan once the
        # lock is free; after RETRY_ATTEMPTS tries the slot's run is failed if it can be (deferred if it
        # has a plan: run_record.fail_unfinished).
        where = f"run of automation {automation_uuid} slot {scheduled_for}"
        if retries >= limit:
            log.error("%s: %s; giving up after %d task retries", where, exc, retries)
            reason = f"Redis or the database stayed unavailable after {retries} retries"
            run_record.fail_unfinished(automation_uuid, parse_slot(scheduled_for), reason, str(exc))
            raise
        countdown = task_countdown_s(retries)
        log.warning("%s: %s; task retry %d/%d in %.1f s", where, exc, retries + 1, limit, countdown)
        raise self.retry(exc=exc, countdown=countdown, max_retries=limit, throw=False) from exc
    busy_for_s = summary.pop("busy_for_s", None)
    if busy_for_s is not None and retries < limit:
        # The slot's lock is held: by a live delivery (it finishes the run), or by a dead one whose lock
        # expires within RUN_LOCK_TTL_S. Check back soon, then less often; the last check comes after the
        # lock would have expired. Short countdowns, far below the visibility timeout; beat's resume
        # sweep is the backstop.
        wait_s = busy_for_s if retries == limit - 1 else min(busy_for_s, float(2 ** retries))
        raise self.retry(countdown=wait_s + 1.0, max_retries=limit)
    return raise_if_failed(summary)


def execute(automation_uuid: str, scheduled_for: str, redelivered: bool = False,
            task_id: str | None = None) -> dict[str, Any]:
    """The run, with one log line at its start and one at its end."""
    started = time.monotonic()
    slot = parse_slot(scheduled_for)
    log.info("run start: automation %s slot %s%s", automation_uuid, slot.isoformat(),
             " (redelivered)" if redelivered else "")
    summary = {"automation_uuid": automation_uuid, "scheduled_for": slot.isoformat(),
               **_execute(automation_uuid, slot, task_id)}
    log.info("run end: automation %s slot %s run %s status %s fetched %s matched %s sent %s attempts %s "
             "in %d ms%s", automation_uuid, slot.isoformat(), summary.get("run_uuid"), summary["status"],
             summary.get("records_fetched"), summary.get("records_matched"), summary.get("records_sent"),
             summary.get("attempts"), (time.monotonic() - started) * 1000,
             f" ({summary['reason']})" if summary.get("reason") else "")
    return summary


def _execute(automation_uuid: str, slot: datetime, task_id: str | None) -> dict[str, Any]:
    """Take the automation's run lock and keep it alive by heartbeat while the run goes on; without it,
    record why nothing ran.

    The uuid goes one way: to the lock's key, then to the run record, which answers with the automation
    and the slot's run (`Found`); everything after is addressed by what the record gave.
    """
    lock = Lock(keys.run_lock(automation_uuid), get_settings().run_lock_ttl_s)
    token = f"{slot.isoformat()}|{task_id or '-'}|{uuid.uuid4().hex}"
    try:
        outcome, busy_for_s = _acquire(lock, token, slot)
    except redis.RedisError as exc:  # nothing claimed yet: the task is retried later
        raise LockUnavailable(f"run lock {lock.key}: {type(exc).__name__}: {exc}") from exc
    if outcome == ACQUIRED:
        heartbeat = Heartbeat(lock, token).start()
        try:
            return _run_holding_lock(run_record.look_up(automation_uuid, slot), slot, heartbeat)
        except (LockLost, PlanConflict) as exc:
            log.warning("run of automation %s slot %s stopped: %s; the delivery holding the lock goes on",
                        automation_uuid, slot.isoformat(), exc)
            return summarize(run_record.note(automation_uuid, slot), note=f"stopped: {exc}")
        finally:
            heartbeat.stop()
            _release(lock, token)
    if outcome == BUSY:
        summary = summarize(run_record.note(automation_uuid, slot),
                            note="this run is in progress on another worker")
        return {**summary, "busy_for_s": busy_for_s}
    reason = "another run of this automation is still going"
    return summarize(run_record.note(automation_uuid, slot, skip_reason=reason))


def _acquire(lock: Lock, token: str, slot: datetime) -> tuple[str, float]:
    """(ACQUIRED, 0); (BUSY, seconds the holder's lock still has) when this slot's run holds it; (OTHER, 0).

    Nothing ever takes over a held lock: a holder that is alive keeps extending it, however long it
    waits, and a dead holder's lock expires within RUN_LOCK_TTL_S. A redelivery that finds it held
    therefore answers BUSY, and checks back once the lock would have expired (see run_automation).
    """
    for _ in range(3):
        if lock.acquire(token):
            return ACQUIRED, 0.0
        holder = lock.holder()
        if holder is None:
            continue  # released between our two calls: try again
        if holder.split("|", 1)[0] != slot.isoformat():
            return OTHER, 0.0
        return BUSY, lock.remaining_s()
    return OTHER, 0.0


def _release(lock: Lock, token: str) -> None:
    """Free the run lock; on a Redis error it is left to its TTL (the run's outcome is already recorded)."""
    try:
        lock.release(token)
    except redis.RedisError as exc:
        log.warning("could not release run lock %s held as %s (%s: %s); its TTL frees it", lock.key,
                    token.split("|", 1)[0], type(exc).__name__, exc)


#: Unfinished earlier runs one delivery completes before its own slot (each needs the same lock).
MAX_EARLIER_RUNS = 10


def _run_holding_lock(found: Found, slot: datetime, heartbeat: Heartbeat) -> dict[str, Any]:
    """Complete the automation's earlier runs left unfinished (a dead worker's), oldest first, then this
    slot's: a slot never plans from the watermark while an unfinished plan exists."""
    ctx = found.context
    if ctx is None:
        return summarize(found)
    done: set[datetime] = set()
    waiting: RunState | None = None
    while found.unfinished_slot is not None and len(done) < MAX_EARLIER_RUNS:
        earlier = found.unfinished_slot
        if earlier in done:
            break
        before = run_record.look_up(ctx.automation_uuid, earlier)
        if _waits(before.run):  # deferred until its resume_at: beat dispatches it then
            waiting = before.run
            break
        log.warning("automation %s: the run of slot %s was left unfinished; completing it before slot %s",
                    ctx.automation_uuid, earlier.isoformat(), slot.isoformat())
        _run_slot(earlier, heartbeat, before)
        done.add(earlier)
        found = run_record.look_up(ctx.automation_uuid, slot)
        if found.context is None:  # deleted meanwhile
            return summarize(found)
    if found.unfinished_slot is not None:
        # An earlier run is still unfinished (deferred): it counts as a run still going, and its plan
        # goes first, so this slot plans nothing now; the next run fetches its records.
        first = found.unfinished_slot.isoformat()
        until = f", deferred until {waiting.resume_at.isoformat()}" if waiting and waiting.resume_at else ""
        reason = f"another run of this automation is still going (slot {first}{until}); it goes first"
        return summarize(run_record.skip(found, slot, reason))
    return _run_slot(slot, heartbeat, found)


def _waits(run: RunState | None) -> bool:
    """A deferred run whose resume_at has not come yet."""
    return (run is not None and run.status == RunStatus.DEFERRED and run.resume_at is not None
            and run.resume_at > utcnow())


def _run_slot(slot: datetime, heartbeat: Heartbeat, found: Found) -> dict[str, Any]:
    """From the definition and the slot's run as read: fetch, match, claim and invoke; failures are
    recorded.

    A run whose plan is stored is completed as planned, even if its automation was paused (or its
    partner function or connection switched off) since: a batch of it may already be applied, and
    skipping it would make the next run send those records again under new keys.
    """
    ctx, existing = found.context, found.run
    if ctx is None or (existing is not None and existing.finished):
        return summarize(found)
    planned = existing is not None and existing.plan is not None
    if ctx.skip_reason and not planned:
        return summarize(run_record.skip(found, slot, ctx.skip_reason))
    where = f"run of automation {ctx.automation_uuid} slot {slot.isoformat()}"
    if ctx.skip_reason:
        log.info("%s: completing its stored plan although %s", where, ctx.skip_reason)
    pending = run_record.Claim(ctx.automation_id, slot, existing)
    try:
        state = perform(ctx, pending, heartbeat.check)
    except BudgetExceeded as exc:  # the connection's budget is spent for longer than a worker should wait
        log.info("%s deferred: %s", where, exc.reason)
        state = pending.defer(exc.reason, None, resume_at=exc.resume_at)
    except (IntegrationError, DefinitionError, CredentialError) as exc:
        state = pending.finish(RunStatus.FAILED, reason=failure_reason(exc), error=str(exc))
    except (ServiceUnavailable, LockLost, PlanConflict):
        raise  # the outcome is not ours to record now: retried, or left to the lock's holder
    except Exception as exc:
        log.exception("%s failed unexpectedly", where)
        pending.finish(RunStatus.FAILED, reason="internal error", error=f"{type(exc).__name__}: {exc}")
        raise
    return summarize(Found(ctx, state))


def summarize(start: Found, note: str | None = None) -> dict[str, Any]:
    """The task's result after the automation and slot: the run's status, counts and reason (never a
    credential)."""
    if start.context is None:
        return {"run_uuid": None, "status": "deleted", "reason": "the automation no longer exists"}
    run: RunState | None = start.run
    assert run is not None
    out: dict[str, Any] = {
        "run_uuid": run.uuid, "status": run.status, "reason": run.reason,
        "records_fetched": run.records_fetched, "records_matched": run.records_matched,
        "records_sent": run.records_sent, "attempts": run.attempts, "duration_ms": run.duration_ms,
        "error": run.error}
    if note:
        out["note"] = note
    return out
