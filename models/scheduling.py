"""When an automation is next due: its schedule's next slot, shifted by its fixed jitter offset.

The API (create, update, resume) and beat (advance after dispatch) both call this, so the stored
`next_run_at` always means the same thing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Protocol

from models.automation import ACTIVE
from models.schedule import Schedule


class Scheduled(Protocol):
    """What the schedule of an automation is read from: an Automation, or beat's row of its columns."""

    @property
    def uuid(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def schedule(self) -> dict[str, Any]: ...
    @property
    def jitter_s(self) -> int: ...
    @property
    def check_on_minutes(self) -> int: ...


def jitter_offset(automation_uuid: str, jitter_s: int, check_on_minutes: int) -> timedelta:
    """A fixed offset in [0, jitter_s] per automation, capped below the interval; spreads runs off :00."""
    cap_s = min(max(jitter_s, 0), max(check_on_minutes * 60 - 1, 0))
    if cap_s == 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(automation_uuid.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % (cap_s + 1))


def schedule_of(automation: Scheduled) -> Schedule:
    """The automation's stored, parsed schedule."""
    return Schedule.from_dict(automation.schedule)


def slot_of(automation: Scheduled, run_at: datetime) -> datetime:
    """The nominal slot a dispatch time stands for (the dispatch time less the jitter offset)."""
    return run_at - jitter_offset(automation.uuid, automation.jitter_s, automation.check_on_minutes)


def next_run_at(automation: Scheduled, after: datetime) -> datetime | None:
    """The dispatch time of the first slot strictly after `after`; None while not ACTIVE."""
    if automation.status != ACTIVE:
        return None
    slot = schedule_of(automation).next_fire_after(after)
    return slot + jitter_offset(automation.uuid, automation.jitter_s, automation.check_on_minutes)
