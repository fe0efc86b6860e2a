"""What a run's end decides about its automation's health, stored on the automation row.

A success (or a run below its threshold) makes it `ok` and resets the failures; a failure makes it
`failing` and counts one more. Any end clears `awaiting_slot` up to the run's slot (a later slot beat has
dispatched meanwhile becomes the one awaited). One UPDATE by primary key; `since` moves only when the state
changes. Health is a view: a failure to store it is logged, never fails the run.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, update
from sqlalchemy.exc import SQLAlchemyError

from models.base import utcnow
from models.db import autocommit_scope
from models.health import FAILING, OK
from models.run import RunStatus
from models.tables import AUTOMATIONS

log = logging.getLogger(__name__)
#: Run statuses that decide a health state; other ends (skipped, missed) only clear the awaited slot.
DECIDES: dict[str, str] = {RunStatus.SUCCEEDED: OK, RunStatus.BELOW_THRESHOLD: OK, RunStatus.FAILED: FAILING}


def run_ended(automation_id: int, slot: datetime, status: str, reason: str | None) -> None:
    """Store what the end of the run of `slot` (with its final `status`) says about the automation."""
    params = {"b_id": automation_id, "b_slot": slot, "b_now": utcnow(), "b_reason": reason}
    try:
        with autocommit_scope() as conn:
            conn.execute(_statement(DECIDES.get(status)), params)
    except SQLAlchemyError as exc:
        log.warning("automation %s: health after the run of slot %s not stored (%s)", automation_id,
                    slot.isoformat(), type(exc).__name__)


@cache
def _statement(state: str | None) -> Any:
    """The UPDATE for a run's end deciding `state` (None: no state decided), built once per state."""
    c = AUTOMATIONS.c
    slot = bindparam("b_slot", type_=c.awaiting_slot.type)
    now = bindparam("b_now", type_=c.health_since.type)
    values: dict[str, Any] = {"awaiting_slot": case(
        (c.awaiting_slot <= slot, case((c.last_run_at > slot, c.last_run_at), else_=None)),
        else_=c.awaiting_slot), "updated_at": c.updated_at}
    if state is not None:
        values |= {"health_state": state,
                   "health_since": case((c.health_state == state, c.health_since), else_=now)}
    if state == OK:
        values |= {"health_reason": None, "last_success_at": now, "consecutive_failures": 0}
    elif state == FAILING:
        values |= {"health_reason": bindparam("b_reason", type_=c.health_reason.type),
                   "consecutive_failures": c.consecutive_failures + 1}
    return update(AUTOMATIONS).where(c.id == bindparam("b_id")).values(**values)
