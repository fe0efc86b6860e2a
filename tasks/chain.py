"""`another_automation`: after a successful run, run the named automation of the same connection next.

Cycle-safe: a chain never runs an automation twice and never grows beyond MAX_CHAIN_DEPTH; the chain is
followed through the runs' parent_run_uuid.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.base import utcnow
from models.criteria import caseless
from models.db import session_scope
from models.run import Run
from models.settings import get_settings
from tasks.enqueue import enqueue_run
from tasks.run_record import record_chained

log = logging.getLogger(__name__)


def chain_next(run_id: int, connection_id: int, automation_id: int, name: str) -> str:
    """Create and enqueue the chained run; returns the sentence recorded as the run's reason."""
    with session_scope() as db:
        reason, target, slot = _plan_chain(db, run_id, connection_id, automation_id, name)
    if target is not None and slot is not None:
        target_uuid, code = target
        enqueue_run(target_uuid, slot, label=code)
        log.info("run %s chained to automation %s for %s", run_id, target_uuid, slot.isoformat())
    return reason


def _plan_chain(db: Session, run_id: int, connection_id: int, automation_id: int,
                name: str) -> tuple[str, tuple[str, str] | None, datetime | None]:
    """(reason, (uuid, code) of the automation to enqueue, slot): the chained run row is created here,
    enqueued after commit."""
    target = named_automation(db, connection_id, name)
    if target is None:
        return f"another_automation {name!r} matches no automation of this connection", None, None
    run = db.get(Run, run_id)
    if run is None:
        return "chain not started: the run vanished", None, None
    limit = get_settings().max_chain_depth
    if run.chain_depth + 1 > limit:
        return f"chain stopped: {name!r} would exceed the maximum chain depth of {limit}", None, None
    if target.id in chain_automation_ids(db, run, limit):
        return f"chain stopped: {name!r} already ran in this chain (cycle)", None, None
    slot = utcnow()
    record_chained(db, target.id, slot, run.chain_depth + 1, run.uuid)
    return f"chained to automation {target.uuid} ({target.name})", (target.uuid, target.code), slot


def named_automation(db: Session, connection_id: int, name: str) -> Automation | None:
    """The automation of the connection whose name or code is `name`, ignoring case as criteria do
    (Unicode case folding and NFC, compared in Python: SQLite's lower() folds ASCII only); the first
    by id when several match."""
    wanted = caseless(name.strip())
    rows = db.execute(select(Automation.id, Automation.name, Automation.code)
                      .where(Automation.connection_id == connection_id).order_by(Automation.id))
    for automation_id, own_name, code in rows:
        if caseless((own_name or "").strip()) == wanted or caseless((code or "").strip()) == wanted:
            return db.get(Automation, automation_id)
    return None


def chain_automation_ids(db: Session, run: Run, limit: int) -> set[int]:
    """The automations of every run in this run's chain, itself included (bounded walk up the parents)."""
    ids = {run.automation_id}
    parent = run.parent_run_uuid
    for _ in range(limit + 1):
        if parent is None:
            break
        row = db.execute(select(Run.automation_id, Run.parent_run_uuid).where(Run.uuid == parent)).first()
        if row is None:
            break
        ids.add(row[0])
        parent = row[1]
    return ids
