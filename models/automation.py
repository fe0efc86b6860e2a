"""Automation: "every 8 hours, take the new suppliers matching these criteria, run partner function X"."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, IdentityMixin

if TYPE_CHECKING:
    from models.connection import Connection
    from models.partner_function import PartnerFunction
    from models.run import Run

ACTIVE = "ACTIVE"
PAUSED = "PAUSED"


class Automation(IdentityMixin, Base):
    """Every field of the seed 000/001 payloads, plus the parsed schedule and the run state."""

    __tablename__ = "automations"
    __table_args__ = (
        UniqueConstraint("connection_id", "code"),
        # Beat's only query: status = ACTIVE AND next_run_at <= now ORDER BY next_run_at LIMIT n.
        Index("ix_automations_due", "status", "next_run_at"),
        # Health counts (GROUP BY health_state, status: the index alone) and the failing list, oldest first.
        Index("ix_automations_health", "health_state", "status", "health_since"),
        # `late`: a dispatched slot no run has finished for LATE_AFTER_S (models/health.py).
        Index("ix_automations_awaiting", "awaiting_slot", sqlite_where=text("awaiting_slot IS NOT NULL"),
              postgresql_where=text("awaiting_slot IS NOT NULL")),
    )

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("integration_connections.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))
    description_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)
    another_automation: Mapped[str | None] = mapped_column(String(255))  # name or code, resolved at run time
    applies_to: Mapped[str] = mapped_column(String(128), index=True)
    applies_to_function: Mapped[str] = mapped_column(String(16), default="all")  # new | update | all
    automation_type: Mapped[str | None] = mapped_column(String(64))
    direction: Mapped[str | None] = mapped_column(String(16), index=True)
    property_name: Mapped[str | None] = mapped_column(String(255))
    do_not_over_write_latest_data: Mapped[bool] = mapped_column(Boolean, default=False)
    ignore_threshold: Mapped[int] = mapped_column(Integer, default=1)
    since_last_look_up: Mapped[bool] = mapped_column(Boolean, default=True)

    # perform_action: the partner function's UUID (names are resolved before storing).
    perform_action: Mapped[str | None] = mapped_column(String(36))
    partner_function_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_functions.id", ondelete="SET NULL"), index=True
    )

    # The schedule as given and as parsed (models.schedule.Schedule.to_dict()).
    check_on: Mapped[str] = mapped_column(String(128))
    custom_day: Mapped[str | None] = mapped_column(String(32))
    custom_time: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    schedule_kind: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    check_on_minutes: Mapped[int] = mapped_column(Integer)
    jitter_s: Mapped[int] = mapped_column(Integer, default=0)

    # The criteria as parsed (models.criteria.Criteria.to_list()).
    additional_criteria: Mapped[bool] = mapped_column(Boolean, default=False)
    criteria: Mapped[list[Any]] = mapped_column(default=list)

    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    status_comment: Mapped[str | None] = mapped_column(Text)

    # Run state: the next slot beat dispatches, the last slot run, the watermark of the last success.
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None] = mapped_column()
    watermark_at: Mapped[datetime | None] = mapped_column()
    watermark_ids: Mapped[list[Any]] = mapped_column(default=list)  # ids seen at watermark_at
    # Records processed whose updated_at is after watermark_at (the watermark never passes a run's start):
    # {id: updated_at ISO}, so they are recognised when fetched again. Compare-and-set on the version.
    watermark_ahead: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    watermark_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Health as the last run's end decided it (tasks/health.py): ok / failing / never_run; paused, disabled
    # and late are derived when read (models/health.py). awaiting_slot: the oldest slot beat dispatched that
    # no run has ended for yet (set by beat's advance, cleared by a run's end).
    health_state: Mapped[str] = mapped_column(String(16), default="never_run", server_default="never_run")
    health_since: Mapped[datetime | None] = mapped_column()
    health_reason: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None] = mapped_column()
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    awaiting_slot: Mapped[datetime | None] = mapped_column()

    connection: Mapped[Connection] = relationship(back_populates="automations")
    partner_function: Mapped[PartnerFunction | None] = relationship()
    runs: Mapped[list[Run]] = relationship(
        back_populates="automation", cascade="all, delete-orphan", passive_deletes=True
    )
