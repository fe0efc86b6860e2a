"""The health overview: counts per state and the late and failing automations, each from indexed SQL.

The counts are three GROUP BY queries whatever the number of automations: all rows by (health_state,
status) from ix_automations_health alone, then the disabled and the late ones, which are subtracted from
the state stored on them. The lists are capped (LIST_LIMIT), oldest problem first.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import ColumnElement, and_, func, not_, select
from sqlalchemy.orm import Session

from models import keys
from models.automation import ACTIVE, Automation
from models.connection import Connection
from models.health import (
    DISABLED,
    FAILING,
    LATE,
    PAUSED,
    STATES,
    A,
    Facts,
    Health,
    Off,
    health_of,
    late_by,
    late_clause,
    off_now,
    state_clause,
)

LIST_LIMIT = 100


@dataclass(frozen=True)
class Problem:
    """One late or failing automation as the overview lists it."""

    uuid: str
    code: str
    name: str
    connection_uuid: str
    health: Health

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"uuid": self.uuid, "code": self.code, "name": self.name,
                "connection_uuid": self.connection_uuid, "health": self.health.to_dict()}


def counts(db: Session, now: datetime, late_after_s: float, client: redis.Redis | None = None,
           cache_s: float = 0.0) -> dict[str, int]:
    """How many automations are in each state (every state present, 0 when none).

    The only query whose cost grows with the table is the GROUP BY over every row (an index-only scan: about
    90 ms on SQLite and 160 ms on PostgreSQL at 1,000,000 automations); with `client` and `cache_s` its
    result is shared through Redis for that long. Late and disabled are always counted afresh (indexed).
    """
    off = off_now(db)
    out = dict.fromkeys(STATES, 0)
    active: Counter[str] = Counter()
    for state, status, n in _stored(db, client, cache_s):
        if status == ACTIVE:
            active[state] += n
        else:
            out[PAUSED] += n
    parts = [(DISABLED, clause) for clause in _disabled_parts(off)]
    for derived, clause in [*parts, (LATE, late_clause(now, late_after_s, off))]:
        for state, n in db.execute(select(A.health_state, func.count()).where(clause)
                                   .group_by(A.health_state)):
            out[derived] += n
            active[state] -= n
    for state, n in active.items():
        out[state] = out.get(state, 0) + max(0, n)
    return out


def _disabled_parts(off: Off) -> list[ColumnElement[bool]]:
    """The disabled ACTIVE automations as disjoint sets, each one index lookup (an OR of the three would
    make SQLite scan every row): on an off connection; else without a partner function; else on an off one."""
    on_off = A.connection_id.in_(off.connection_ids)
    parts = [and_(A.status == ACTIVE, on_off)] if off.connection_ids else []
    rest = [A.status == ACTIVE, *([not_(on_off)] if off.connection_ids else [])]
    parts.append(and_(*rest, A.partner_function_id.is_(None)))
    if off.partner_function_ids:
        parts.append(and_(*rest, A.partner_function_id.in_(off.partner_function_ids)))
    return parts


def _stored(db: Session, client: redis.Redis | None, cache_s: float) -> list[tuple[str, str, int]]:
    """Rows per (health_state, status) from ix_automations_health alone; cached in Redis when asked."""
    if client is not None and cache_s > 0:
        cached = client.get(keys.HEALTH_COUNTS)
        if cached is not None:
            return [(str(a), str(b), int(n)) for a, b, n in json.loads(cached)]
    rows = [(str(a), str(b), int(n)) for a, b, n in db.execute(
        select(A.health_state, A.status, func.count()).group_by(A.health_state, A.status))]
    if client is not None and cache_s > 0:
        client.set(keys.HEALTH_COUNTS, json.dumps(rows), px=max(1, int(cache_s * 1000)))
    return rows


def late(db: Session, now: datetime, late_after_s: float, limit: int = LIST_LIMIT) -> list[Problem]:
    """The late automations, the oldest overdue slot first.

    An automation's overdue slot is the older of its awaiting slot and its undispatched one, an order no
    index serves. So the head of each kind is read through its own index (ix_automations_awaiting,
    ix_automations_due) and the two heads are merged: an automation among the first `limit` by the older
    of its two slots is among the first `limit` of that slot's own kind.
    """
    off = off_now(db)
    heads: dict[str, Problem] = {}
    for slot in (A.awaiting_slot, A.next_run_at):
        where = late_by(slot, now, late_after_s, off)
        for problem in _problems(db, where, (slot,), now, late_after_s, limit):
            heads[problem.uuid] = problem
    return sorted(heads.values(), key=lambda p: (p.health.since, p.uuid))[:limit]


def failing(db: Session, now: datetime, late_after_s: float, limit: int = LIST_LIMIT) -> list[Problem]:
    """The failing automations, failing longest first."""
    return _problems(db, state_clause(FAILING, now, late_after_s, off_now(db)), (A.health_since, A.id), now,
                     late_after_s, limit)


def _problems(db: Session, where: ColumnElement[bool], order: tuple[Any, ...], now: datetime,
              late_after_s: float, limit: int) -> list[Problem]:
    """The automations matching `where` (none disabled nor running, by construction), with their health."""
    stmt = (select(Automation, Connection.uuid).join(Connection, Connection.id == Automation.connection_id)
            .where(where).order_by(*order).limit(limit))
    return [Problem(auto.uuid, auto.code, auto.name, conn_uuid, health_of(auto, Facts(), now, late_after_s))
            for auto, conn_uuid in db.execute(stmt)]
