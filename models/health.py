"""An automation's health: the states, the SQL that selects each (indexed), and the same rule for one row.

A run's end stores ok / failing on the row (tasks/health.py); paused, disabled and late are derived when
read, in this order of precedence: paused > disabled > late > the stored state. `late` is a slot more than
LATE_AFTER_S past with no run started: either beat has not dispatched it (`next_run_at`), or beat did and
no run has ended for it (`awaiting_slot`) while none of the automation's runs is going (running or
deferred). Every clause here is answered from an index (ix_automations_due, ix_automations_awaiting,
ix_automations_health, ix_runs_unfinished), never by a loop over automations in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, text, true
from sqlalchemy.orm import Session

from models.automation import ACTIVE, Automation
from models.run import UNFINISHED_SQL
from models.tables import AUTOMATIONS, CONNECTIONS, PARTNER_FUNCTIONS, RUNS

OK, LATE, FAILING, NEVER_RUN, PAUSED, DISABLED = "ok", "late", "failing", "never_run", "paused", "disabled"
STATES = (OK, LATE, FAILING, NEVER_RUN, PAUSED, DISABLED)
#: What a run's end stores on the row.
STORED = (OK, FAILING, NEVER_RUN)

A, C, P, R = AUTOMATIONS.c, CONNECTIONS.c, PARTNER_FUNCTIONS.c, RUNS.c


def parse_states(value: str | None) -> list[str] | None:
    """`late,failing` as a list; ValueError naming the unknown state (the API answers 422)."""
    if value is None or not value.strip():
        return None
    states = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [s for s in states if s not in STATES]
    if unknown:
        raise ValueError(f"unknown health state {unknown[0]!r}; one or more of {', '.join(STATES)}")
    return states


def cutoff(now: datetime, late_after_s: float) -> datetime:
    """A slot before this with no run started makes its automation late."""
    return now - timedelta(seconds=late_after_s)


def connection_off() -> ColumnElement[bool]:
    """The connection is unusable: disabled, suspended, or refused its refresh token."""
    return or_(C.status != ACTIVE, C.suspended == true(), C.needs_reconnect == true())


@dataclass(frozen=True)
class Off:
    """The ids of the connections and partner functions that are off: few, read first, so the clauses
    below are plain IN lists the automations' indexes answer (no planner guessing a subquery's size)."""

    connection_ids: tuple[int, ...]
    partner_function_ids: tuple[int, ...]


def off_now(db: Session) -> Off:
    """Read which connections and partner functions are off (two small indexed queries)."""
    connections = tuple(db.scalars(select(C.id).where(connection_off())))
    functions = tuple(db.scalars(select(P.id).where(P.enabled == false())))
    return Off(connections, functions)


def disabled_clause(off: Off) -> ColumnElement[bool]:
    """An automation whose connection or partner function is off (or missing): its runs are skipped."""
    return or_(A.connection_id.in_(off.connection_ids), A.partner_function_id.is_(None),
               A.partner_function_id.in_(off.partner_function_ids))


def running_clause() -> ColumnElement[bool]:
    """One of the automation's runs is going (running or deferred): through ix_runs_unfinished."""
    return exists(select(R.id).where(R.automation_id == A.id, text(f"runs.{UNFINISHED_SQL}")))


def overdue_clause(now: datetime, late_after_s: float) -> ColumnElement[bool]:
    """A slot older than the cutoff that beat has not dispatched, or that no run has ended for."""
    before = cutoff(now, late_after_s)  # IS NOT NULL: never NULL, so NOT(...) of it is exact
    return or_(and_(A.awaiting_slot.is_not(None), A.awaiting_slot < before),
               and_(A.next_run_at.is_not(None), A.next_run_at < before))


def late_clause(now: datetime, late_after_s: float, off: Off) -> ColumnElement[bool]:
    """ACTIVE, not disabled, overdue, and nothing of it running."""
    return and_(A.status == ACTIVE, overdue_clause(now, late_after_s), not_(disabled_clause(off)),
                not_(running_clause()))


def late_by(slot: ColumnElement[Any], now: datetime, late_after_s: float, off: Off) -> ColumnElement[bool]:
    """The late automations whose `slot` (awaiting_slot or next_run_at) is overdue: late_clause without
    its OR, so the slot's own index is walked in order and the walk stops at a LIMIT."""
    return and_(A.status == ACTIVE, slot.is_not(None), slot < cutoff(now, late_after_s),
                not_(disabled_clause(off)), not_(running_clause()))


def state_clause(state: str, now: datetime, late_after_s: float, off: Off) -> ColumnElement[bool]:
    """The rows whose health is `state` (the same precedence as `health_of`)."""
    if state == PAUSED:
        return A.status != ACTIVE
    if state == DISABLED:
        return and_(A.status == ACTIVE, disabled_clause(off))
    if state == LATE:
        return late_clause(now, late_after_s, off)
    return and_(A.status == ACTIVE, A.health_state == state, not_(disabled_clause(off)),
                not_(and_(overdue_clause(now, late_after_s), not_(running_clause()))))


def states_clause(states: list[str], now: datetime, late_after_s: float, off: Off) -> ColumnElement[bool]:
    """Rows in any of `states` (the list filter `?health=late,failing`)."""
    return or_(*(state_clause(s, now, late_after_s, off) for s in states))


@dataclass(frozen=True)
class Health:
    """What details and lists show: `since` is when the state began, `reason` why (None when ok)."""

    state: str
    since: datetime | None
    reason: str | None
    last_success_at: datetime | None
    consecutive_failures: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times as ISO 8601."""
        return {"state": self.state, "since": _iso(self.since), "reason": self.reason,
                "last_success_at": _iso(self.last_success_at),
                "consecutive_failures": self.consecutive_failures}


@dataclass(frozen=True)
class Facts:
    """What the rule needs beyond the automation row: why it is disabled (None: it is not), since when,
    and whether one of its runs is going."""

    disabled_reason: str | None = None
    disabled_since: datetime | None = None
    running: bool = False


def health_of(auto: Automation, facts: Facts, now: datetime, late_after_s: float) -> Health:
    """One automation's health, by the same rule as `state_clause`."""
    last, failures = auto.last_success_at, auto.consecutive_failures or 0
    if auto.status != ACTIVE:
        comment = f": {auto.status_comment}" if auto.status_comment else ""
        return Health(PAUSED, auto.updated_at, f"automation is paused{comment}", last, failures)
    if facts.disabled_reason:
        return Health(DISABLED, facts.disabled_since, facts.disabled_reason, last, failures)
    late = overdue(auto, now, late_after_s) if not facts.running else None
    if late is not None:
        return Health(LATE, late[0], late[1], last, failures)
    state = auto.health_state or NEVER_RUN
    since = auto.health_since if state != NEVER_RUN else auto.created_at
    return Health(state, since, auto.health_reason if state == FAILING else None, last, failures)


def overdue(auto: Automation, now: datetime, late_after_s: float) -> tuple[datetime, str] | None:
    """(since, reason) when a slot is overdue (late unless a run is going); the older kind wins."""
    before, found = cutoff(now, late_after_s), []
    if auto.awaiting_slot is not None and auto.awaiting_slot < before:
        found.append((auto.awaiting_slot, f"slot {auto.awaiting_slot.isoformat()} was dispatched and no run "
                                          f"has started for it after {late_after_s:.0f} s (are workers up?)"))
    if auto.next_run_at is not None and auto.next_run_at < before:
        found.append((auto.next_run_at, f"slot {auto.next_run_at.isoformat()} is due and beat has not "
                                         f"dispatched it after {late_after_s:.0f} s (is beat up?)"))
    if not found:
        return None
    slot, reason = min(found, key=lambda item: item[0])
    return slot + timedelta(seconds=late_after_s), reason


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
