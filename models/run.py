"""Run: one execution of an automation for one slot; (automation, scheduled_for) is unique."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IdentityMixin

if TYPE_CHECKING:
    from models.automation import Automation



class RunStatus(StrEnum):
    """A run's status (DESIGN "A run"); stored as its value."""

    QUEUED = "queued"
    RUNNING = "running"
    DEFERRED = "deferred"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    BELOW_THRESHOLD = "below_threshold"
    MISSED = "missed"


class Trigger(StrEnum):
    """What started a run."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    CHAIN = "chain"
    CATCH_UP = "catch_up"


TRIGGERS = tuple(Trigger)
STATUSES = tuple(RunStatus)
FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED, RunStatus.BELOW_THRESHOLD,
                      RunStatus.MISSED})
UNFINISHED_SQL = "status IN ('running', 'deferred')"


class Run(IdentityMixin, Base):
    """A run's identity is (automation, intended slot): a second delivery finds this row and stops."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("automation_id", "scheduled_for"),
        # The run's "older unfinished run first" lookup and beat's resume sweep read only these rows.
        Index("ix_runs_unfinished", "automation_id", "scheduled_for",
              sqlite_where=text(UNFINISHED_SQL), postgresql_where=text(UNFINISHED_SQL)),
    )

    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column()
    trigger: Mapped[str] = mapped_column(String(16), default=Trigger.SCHEDULE.value)
    status: Mapped[str] = mapped_column(String(24), default=RunStatus.QUEUED.value, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    records_fetched: Mapped[int] = mapped_column(Integer, default=0)
    records_matched: Mapped[int] = mapped_column(Integer, default=0)
    records_sent: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    chain_depth: Mapped[int] = mapped_column(Integer, default=0)
    parent_run_uuid: Mapped[str | None] = mapped_column(String(36))
    # Fixed when the records are first selected, so a redelivered run resends the same batches
    # (tasks.selection.Plan.to_dict()); batches_sent: how many of them the partner acknowledged.
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    batches_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Partner limits: time spent waiting for the connection's budget, 429s received, and for a `deferred`
    # run when beat dispatches it again (None: at the next resume sweep).
    budget_wait_ms: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    throttled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    resume_at: Mapped[datetime | None] = mapped_column()

    automation: Mapped[Automation] = relationship(back_populates="runs")

    @property
    def finished(self) -> bool:
        """Whether the run reached a final status (a redelivery then does nothing)."""
        return self.status in FINISHED
