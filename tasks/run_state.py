"""The run row as the run task needs it, and the one rule about a finished run's reason (a catch-up run keeps
the slots it stands for in front). Values only: tasks/run_record.py reads and writes the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from models.run import FINISHED, Trigger


@dataclass(frozen=True)
class RunState:
    """The run row as the task needs it."""

    id: int
    uuid: str
    scheduled_for: datetime
    status: str
    reason: str | None
    attempts: int
    chain_depth: int
    parent_run_uuid: str | None
    plan: dict[str, Any] | None
    batches_sent: int
    records_fetched: int
    records_matched: int
    records_sent: int
    duration_ms: int | None
    error: str | None
    started_at: datetime | None = None
    trigger: str | None = None
    budget_wait_ms: int = 0
    throttled: int = 0
    resume_at: datetime | None = None

    #: The run columns a RunState is made of (what the lean writes return).
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id", "uuid", "scheduled_for", "status", "reason", "attempts", "chain_depth", "parent_run_uuid",
        "plan", "batches_sent", "records_fetched", "records_matched", "records_sent", "duration_ms", "error",
        "started_at", "trigger", "budget_wait_ms", "throttled", "resume_at")

    @classmethod
    def of(cls, run: Any) -> RunState:
        """Copy the values of a Run object or of a row with the COLUMNS."""
        return cls(run.id, run.uuid, run.scheduled_for, run.status, run.reason, run.attempts, run.chain_depth,
                   run.parent_run_uuid, run.plan, run.batches_sent or 0, run.records_fetched,
                   run.records_matched, run.records_sent, run.duration_ms, run.error, run.started_at,
                   run.trigger, run.budget_wait_ms or 0, run.throttled or 0, run.resume_at)

    @property
    def finished(self) -> bool:
        """Whether the run reached a final status."""
        return self.status in FINISHED

    def final_reason(self, reason: str | None) -> str | None:
        """The reason to record at the end: a catch-up run keeps the slots it stands for in front."""
        return with_coalescing(self.trigger, self.reason, reason)


#: How beat's reason on a `catch_up` run begins (worker/beat/catch_up.py): it is kept when the run finishes.
COALESCED_PREFIX = "catch-up after downtime:"


def with_coalescing(trigger: str | None, previous: str | None, reason: str | None) -> str | None:
    """`<coalescing reason>; <reason>` on a catch-up run, so its outcome does not hide which slots it
    stands for; any other run's reason is just `reason`."""
    if trigger != Trigger.CATCH_UP or not previous or not previous.startswith(COALESCED_PREFIX):
        return reason
    if reason and reason.startswith(COALESCED_PREFIX):
        return reason  # already combined
    coalesced = previous.split("; ", 1)[0]
    return f"{coalesced}; {reason}" if reason else coalesced
