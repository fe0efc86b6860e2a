"""What beat does with one due automation: the slot to dispatch, and after downtime which slots were missed.

Pure schedule maths, no I/O. A beat that was down sees several slots already due: those within the
grace window are coalesced into one `catch_up` run for the newest; older ones are recorded as `missed`
runs (at most `max_missed` rows per automation and tick, the last one saying that more were missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.run import Trigger
from models.schedule import Schedule

EPSILON = timedelta(microseconds=1)
SCAN_LIMIT = 1000  # fires read per fires_between call while looking for the newest slot in the window


@dataclass(frozen=True)
class Missed:
    """A slot nobody ran, with the reason recorded on its `missed` run."""

    slot: datetime
    reason: str


@dataclass(frozen=True)
class Decision:
    """The outcome for one automation: the slot to run (if any), its trigger, the missed slots."""

    run_slot: datetime | None
    trigger: Trigger  # SCHEDULE or CATCH_UP
    resume_after: datetime  # every slot up to here is accounted for; next is the first fire after it
    missed: list[Missed] = field(default_factory=list)
    reason: str | None = None  # recorded on a catch_up run: which slots it stands for


def decide(schedule: Schedule, slot: datetime, horizon: datetime, grace_s: int, max_missed: int) -> Decision:
    """Decide for a due slot; `horizon` is the newest slot already due (now less the jitter offset)."""
    if schedule.next_fire_after(slot) > horizon:
        return single(slot, horizon, grace_s)
    grace_start = horizon - timedelta(seconds=grace_s)
    missed = _missed(schedule, slot, grace_start, max_missed)
    recent = _recent(schedule, slot, grace_start, horizon)
    if recent is None:
        return Decision(run_slot=None, trigger=Trigger.CATCH_UP, resume_after=horizon, missed=missed)
    first, count, newest = recent
    reason = f"catch-up after downtime: {count} slot(s) due from {first.isoformat()} coalesced into this run"
    return Decision(run_slot=newest, trigger=Trigger.CATCH_UP, resume_after=horizon, missed=missed,
                    reason=reason)


def single(slot: datetime, horizon: datetime, grace_s: int) -> Decision:
    """The only due slot: run it, unless it is older than the grace window (a daily run 23 h late after
    an outage): then it is recorded `missed`, with the reason, like any slot that old."""
    grace_start = horizon - timedelta(seconds=grace_s)
    if slot >= grace_start:
        return Decision(run_slot=slot, trigger=Trigger.SCHEDULE, resume_after=slot)
    reason = (f"beat was not running; the slot was {int((horizon - slot).total_seconds())} s overdue, older "
              f"than the catch-up grace window ending {grace_start.isoformat()}")
    return Decision(run_slot=None, trigger=Trigger.SCHEDULE, resume_after=slot, missed=[Missed(slot, reason)])


def _missed(schedule: Schedule, slot: datetime, grace_start: datetime, max_missed: int) -> list[Missed]:
    """Slots older than the grace window, at most `max_missed` (the last saying if there were more)."""
    if slot >= grace_start or max_missed <= 0:
        return []
    slots = [slot, *schedule.fires_between(slot, grace_start - EPSILON, max_missed)]
    reason = f"beat was not running; older than the catch-up grace window ending {grace_start.isoformat()}"
    rows = [Missed(s, reason) for s in slots[:max_missed]]
    if len(slots) > max_missed:
        more = f"; later slots up to {grace_start.isoformat()} were missed too and not recorded one by one"
        rows[-1] = Missed(rows[-1].slot, reason + more)
    return rows


def _recent(
    schedule: Schedule, slot: datetime, grace_start: datetime, horizon: datetime
) -> tuple[datetime, int, datetime] | None:
    """(first, count, newest) of the due slots within the grace window, or None when there are none."""
    first: datetime | None = slot if slot >= grace_start else None
    count = 1 if first else 0
    newest = first
    cursor = max(slot, grace_start - EPSILON)
    while True:
        fires = schedule.fires_between(cursor, horizon, SCAN_LIMIT)
        if fires:
            first = first or fires[0]
            count += len(fires)
            newest = cursor = fires[-1]
        if len(fires) < SCAN_LIMIT:
            break
    return (first, count, newest) if first and newest else None

