"""The database-backed Celery beat scheduler, the app's default: `celery -A worker beat` uses it.

Each tick (≤ 1 s): a standby tries to take the leader lock; the leader extends it and, in the same
round trip, reads the schedule generation. While nothing is due by the cached earliest next_run_at and
the generation is unchanged, the tick ends there without touching the database (re-read anyway every
60 s). Otherwise it dispatches due automations in bounded batches (worker.beat.dispatch). Every
RESUME_SWEEP_S it also dispatches again the runs a dead worker left unfinished (worker.beat.resume).
Database and Redis errors are logged with the ids, connections are refreshed, and the next tick retries:
beat never dies.

Celery-native entries (`app.conf.beat_schedule`) are not run by this scheduler; a warning says so.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Literal

import redis
from celery import Celery
from celery.beat import Scheduler
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from models import keys
from models.db import get_engine
from models.redis_clients import new_client
from models.settings import Settings, get_settings
from worker.beat.dispatch import Dispatcher, now_utc
from worker.beat.leader import LeaderLock, new_beat_id
from worker.beat.publish import Publisher, make_publisher
from worker.beat.resume import ResumeSweep

log = logging.getLogger(__name__)

REREAD_S = 60.0  # safety net: re-read the earliest due time at least this often
TICK_BUDGET_S = 2.0  # dispatch at most this long per tick (the lock is extended between batches)


class Beat:
    """One beat's state: leadership, the cached earliest due time and the generation it was read at."""

    def __init__(self, engine: Engine, client: redis.Redis, publisher: Publisher, settings: Settings,
                 beat_id: str | None = None) -> None:
        self.engine = engine
        self.client = client
        self.settings = settings
        self.tick_s = settings.beat_tick_s
        self.lock = LeaderLock(client, beat_id or new_beat_id(), settings.beat_lock_ttl_s)
        self.dispatcher = Dispatcher(engine, publisher, settings.beat_batch_size, settings.catch_up_grace_s)
        self.resume = ResumeSweep(engine, client, publisher, settings.resume_sweep_s,
                                  settings.beat_batch_size)
        self.earliest: datetime | None = None
        self.generation: bytes | None = None
        self.read_at: float | None = None  # monotonic time of the last read; None forces a read
        self.check_redis_data = True  # as a new leader: did Redis lose the queue? (see _resend_lost)

    @property
    def beat_id(self) -> str:
        """This beat's unique id (the leader lock's value)."""
        return self.lock.beat_id

    def tick(self, now: datetime | None = None) -> float:
        """One scheduling pass; returns the seconds to sleep. Never raises (beat must not die)."""
        try:
            return self._tick(now or now_utc())
        except Exception as exc:
            self._recover(exc)
            return self.tick_s

    def _tick(self, now: datetime) -> float:
        """Lead or stand by; as leader, skip the database while nothing can be due."""
        generation = self._lead()
        if generation is False:
            return self.tick_s
        if self.resume.due() or (self.read_at is not None and generation != self.generation):
            self.resume.sweep()  # also when told of a change: a run just deferred plans the next sweep
        if self._idle(now, generation):
            return self._sleep_s(now)
        self.generation = generation if isinstance(generation, bytes) else None
        more = self._dispatch_due(now)
        self.earliest = self.dispatcher.earliest()
        self.read_at = time.monotonic()
        return 0.0 if more else self._sleep_s(now_utc())

    def _lead(self) -> bytes | None | Literal[False]:
        """Extend (or try to take) the lock; the schedule generation, or False while standing by."""
        if not self.lock.held:
            if not self.lock.acquire():
                return False
            self.read_at = None  # a new leader trusts no cache
            self.check_redis_data = True
        held, generation = self.lock.extend()
        if held and self.check_redis_data:
            self._resend_lost()
        return generation if held else False

    def _resend_lost(self) -> None:
        """If Redis lost its data (restart without persistence), send again the slots whose message it lost.

        The marker is set only after the re-send succeeded, so a failure is retried next tick; a redundant
        message is harmless (one run per slot).
        """
        if not self.client.exists(keys.REDIS_MARKER):
            resent = self.dispatcher.resend_unstarted(now_utc())
            if resent:
                log.warning("beat %s: Redis lost its data; sent %d slot(s) that never started again",
                            self.beat_id, resent)
            self.client.set(keys.REDIS_MARKER, self.beat_id)
        self.check_redis_data = False

    def _idle(self, now: datetime, generation: bytes | None) -> bool:
        """Nothing due by the cache, no change announced, and the cache is fresh: no database query."""
        if self.read_at is None or generation != self.generation:
            return False
        if time.monotonic() - self.read_at >= REREAD_S:
            return False
        return self.earliest is None or self.earliest > now

    def _dispatch_due(self, now: datetime) -> bool:
        """Batches until none is due, within the tick budget; True if some were left for the next pass."""
        started = time.monotonic()
        while True:
            result = self.dispatcher.dispatch_batch(now)
            if result.selected:
                log.info("beat %s: dispatched %d run(s) for %d due automation(s)",
                         self.beat_id, result.dispatched, result.selected)
            if result.selected < self.dispatcher.batch_size:
                return False
            if time.monotonic() - started > TICK_BUDGET_S or self._lead() is False:
                return True

    def _sleep_s(self, now: datetime) -> float:
        """Until the earliest due time, at most one tick; a full tick while something stays stuck due."""
        if self.earliest is None or self.earliest <= now:
            return self.tick_s
        return max(0.0, min(self.tick_s, (self.earliest - now).total_seconds()))

    def _recover(self, exc: Exception) -> None:
        """Log with the ids, refresh the failed connection, and force a fresh read next tick."""
        self.read_at = None
        if isinstance(exc, redis.RedisError | OSError):
            log.error("beat %s: Redis error in tick (%s); retrying next tick", self.beat_id, exc)
            self.lock.forget()
            self.client.connection_pool.disconnect()
        elif isinstance(exc, SQLAlchemyError):
            log.error("beat %s: database error in tick (%s); retrying next tick", self.beat_id, exc)
            self.engine.dispose()
        else:
            log.exception("beat %s: tick failed; retrying next tick", self.beat_id)

    def close(self) -> None:
        """Release the lock so a standby takes over at once; close connections."""
        try:
            self.lock.release()
        except (redis.RedisError, OSError) as exc:
            log.warning("beat %s: could not release the leader lock (%s); it will expire", self.beat_id, exc)
        self.client.close()


def make_beat(app: Celery, settings: Settings | None = None, publish_mode: str = "auto") -> Beat:
    """A Beat on the process engine and a Redis client for lock and publish (the next tick is the retry)."""
    s = settings or get_settings()
    client = new_client(s.redis_url, 5, 5, decode=False, health_check_interval=30,
                        retry=Retry(NoBackoff(), 0))
    return Beat(get_engine(s.database_url), client, make_publisher(app, client, publish_mode), s)


class DatabaseScheduler(Scheduler):
    """Celery's scheduler interface over Beat: tick ≤ beat_tick_s, no schedule file, no in-memory entries."""

    max_interval: float  # Scheduler sets it (untyped); we cap it at beat_tick_s in __init__

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        self.beat: Beat | None = None
        super().__init__(app, *args, **kwargs)
        self.max_interval = min(float(self.max_interval), get_settings().beat_tick_s)

    def setup_schedule(self) -> None:
        """Connect lazily (no query here), so start-up costs the same at any number of automations."""
        self.beat = make_beat(self.app)
        if self.app.conf.beat_schedule:
            log.warning("beat %s: app.conf.beat_schedule entries are ignored by the database scheduler",
                        self.beat.beat_id)
        log.info("beat %s: database scheduler ready (tick %.2f s)", self.beat.beat_id, self.beat.tick_s)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """One pass of Beat; Celery sleeps the returned seconds."""
        assert self.beat is not None
        return min(self.beat.tick(), float(self.max_interval))

    @property
    def schedule(self) -> dict[str, Any]:
        """No in-memory entries: the automations table is the schedule."""
        return {}

    def sync(self) -> None:
        """Nothing to persist: every advance is committed as it happens."""

    def close(self) -> None:
        """Release the leader lock on shutdown."""
        if self.beat is not None:
            self.beat.close()
        super().close()

    @property
    def info(self) -> str:
        """Shown in beat's start-up banner."""
        lock = self.beat.lock.key if self.beat else "?"
        return f"    . database scheduler, leader lock -> {lock}"
