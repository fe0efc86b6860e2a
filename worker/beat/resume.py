"""Beat's resume sweep: a run that started and did not finish is never abandoned.

A worker that dies mid-run leaves its run `running` (or a run waits `deferred`) and its run lock to
expire within RUN_LOCK_TTL_S. The broker may redeliver the message, or may not (a BUSY delivery acked
it, Redis lost it, the visibility timeout is hours away). So every RESUME_SWEEP_S the beat leader reads
the unfinished runs (through the partial index ix_runs_unfinished), asks Redis in one round trip which
of their automations' run locks are free, and dispatches the oldest such run of each automation again:
the run resumes with the same run uuid, plan and Idempotency-Keys. A marker in Redis keeps one
automation from being re-dispatched more than once per ten sweeps while workers are down (per resume_at:
a run deferred again gets dispatched at its new time).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import Engine, func, or_, select, text

from models import keys
from models.base import utcnow
from models.run import UNFINISHED_SQL
from models.tables import AUTOMATIONS, RUNS
from tasks.message import RunCall
from worker.beat.publish import Publisher

log = logging.getLogger(__name__)

MAX_ROWS = 10_000  # unfinished runs read per sweep (keyset pages of `batch_size`)


class ResumeSweep:
    """Finds abandoned runs and dispatches them again; cheap when there are none (one indexed query)."""

    def __init__(self, engine: Engine, client: redis.Redis, publisher: Publisher, interval_s: float,
                 batch_size: int) -> None:
        self.engine = engine
        self.client = client
        self.publisher = publisher
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.marker_ttl_s = max(1, int(interval_s * 10))
        self.next_at = 0.0  # monotonic: the first sweep comes with the first tick as leader

    def due(self) -> bool:
        """Whether a sweep is due now."""
        return time.monotonic() >= self.next_at

    def sweep(self) -> int:
        """Dispatch the abandoned runs, and the deferred ones whose resume_at has come, again; how many.

        The next sweep comes after RESUME_SWEEP_S, or at the earliest resume_at still ahead if sooner:
        a deferred run is dispatched when its time comes (beat's due-time machinery, not a countdown).
        """
        now = utcnow()
        after_id, dispatched, seen = 0, 0, 0
        with self.engine.connect() as conn:
            ahead = conn.execute(self._earliest_resume(now)).scalar()
        wait_s = self.interval_s if ahead is None else min(self.interval_s, (ahead - now).total_seconds())
        self.next_at = time.monotonic() + max(0.0, wait_s)
        while seen < MAX_ROWS:
            with self.engine.connect() as conn:
                rows = conn.execute(self._query(after_id, now)).all()
            if not rows:
                break
            seen, after_id = seen + len(rows), rows[-1].id
            dispatched += self._dispatch_free(rows)
            if len(rows) < self.batch_size:
                break
        if dispatched:
            log.warning("beat: %d run(s) left unfinished by a dead worker dispatched again to resume",
                        dispatched)
        return dispatched

    def _query(self, after_id: int, now: datetime) -> Any:
        """Unfinished claimed runs (a deferred one once its resume_at has come) with their automation's
        uuid, keyset by run id."""
        r, a = RUNS.c, AUTOMATIONS.c
        return (select(r.id, r.scheduled_for, r.resume_at, a.uuid).join(AUTOMATIONS, a.id == r.automation_id)
                .where(text(f"runs.{UNFINISHED_SQL}"), or_(r.resume_at.is_(None), r.resume_at <= now),
                       r.id > after_id)
                .order_by(r.id).limit(self.batch_size))

    def _earliest_resume(self, now: datetime) -> Any:
        """The earliest resume_at of a deferred run still ahead."""
        r = RUNS.c
        return select(func.min(r.resume_at)).where(text(f"runs.{UNFINISHED_SQL}"), r.resume_at > now)

    def _dispatch_free(self, rows: Sequence[Any]) -> int:
        """Publish the oldest run of each automation whose run lock is free and not dispatched lately."""
        oldest: dict[str, Any] = {}
        for row in rows:
            kept = oldest.get(row.uuid)
            if kept is None or row.scheduled_for < kept.scheduled_for:
                oldest[row.uuid] = row
        candidates = list(oldest.values())
        holders = self.client.mget([keys.run_lock(row.uuid) for row in candidates])
        free = [row for row, holder in zip(candidates, holders, strict=True) if holder is None]
        if not free:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for row in free:
            when = row.resume_at.isoformat() if row.resume_at else "-"
            pipe.set(keys.resume_marker(row.uuid, when), row.scheduled_for.isoformat(), nx=True,
                     ex=self.marker_ttl_s)
        calls: list[RunCall] = [(row.uuid, row.scheduled_for.isoformat())
                                for row, fresh in zip(free, pipe.execute(), strict=True) if fresh]
        if calls:
            self.publisher.publish(calls)
        return len(calls)
