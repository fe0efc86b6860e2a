"""Beat leader election: one Redis key with a short TTL, held by one beat and extended every tick.

The lock is the run lock's (tasks/locks.py); its extend also reads the schedule generation and records the
tick's time (beat's liveness, read by `/health/beat`), so the leader's idle tick costs one Redis round trip
and a beat whose loop is stuck stops recording. A beat that loses the lock stops dispatching and keeps
trying to take it back (RedBeat's beats exit instead: its issue #306).
"""

from __future__ import annotations

import logging
import socket
import time
import uuid

import redis

from models import keys
from tasks.locks import Lock

log = logging.getLogger(__name__)

def new_beat_id() -> str:
    """A unique id for this beat process, readable in logs and in the lock's value."""
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"


class LeaderLock:
    """The beat leader lock; `held` says whether this beat believes it may dispatch."""

    def __init__(self, client: redis.Redis, beat_id: str, ttl_s: float, key: str = keys.BEAT_LEADER_LOCK):
        self.client = client
        self.beat_id = beat_id
        self.key = key
        self.lock = Lock(key, ttl_s, client)
        self.ttl_ms = self.lock.ttl_ms
        self.held = False

    def acquire(self) -> bool:
        """Take the lock if free (or still ours); True when this beat now leads."""
        if self.lock.take(self.beat_id):
            log.info("beat %s: became leader (lock %s, ttl %d ms)", self.beat_id, self.key, self.ttl_ms)
            self.held = True
        return self.held

    def extend(self) -> tuple[bool, bytes | None]:
        """Extend our TTL if we still hold the lock and record the tick; also returns the schedule generation
        (one round trip)."""
        still, generation = self.lock.extend_and_read(self.beat_id, keys.SCHEDULE_GENERATION,
                                                      stamp=(keys.BEAT_LAST_TICK, f"{time.time():.3f}"))
        if not still and self.held:
            log.warning("beat %s: lost the leader lock %s; standing by", self.beat_id, self.key)
        self.held = bool(still)
        return self.held, generation

    def release(self) -> None:
        """Give the lock up on shutdown so a standby takes over at once, not after the TTL."""
        was_held, self.held = self.held, False
        if self.lock.release(self.beat_id) and was_held:
            log.info("beat %s: released the leader lock %s", self.beat_id, self.key)

    def forget(self) -> None:
        """Stop believing we lead (after a Redis error we cannot tell; the lock may expire meanwhile)."""
        if self.held:
            log.warning("beat %s: leadership unknown after a Redis error; standing by", self.beat_id)
        self.held = False
