"""Beat leader election: one Redis key with a short TTL, held by one beat and extended every tick.

The extend is a compare-and-extend Lua script that also returns the schedule generation, so the leader's
idle tick costs one Redis round trip. A beat that loses the lock stops dispatching and keeps trying to
take it back (RedBeat's beats exit instead: its issue #306).
"""

from __future__ import annotations

import logging
import socket
import uuid

import redis

from models import keys

log = logging.getLogger(__name__)

# KEYS[1] lock, KEYS[2] schedule generation; ARGV[1] our id, ARGV[2] ttl ms.
_EXTEND = """
local gen = redis.call('get', KEYS[2])
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return {1, gen}
end
return {0, gen}
"""
# KEYS[1] lock; ARGV[1] our id, ARGV[2] ttl ms. Takes a free lock, or re-adopts our own (after a Redis blip).
_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def new_beat_id() -> str:
    """A unique id for this beat process, readable in logs and in the lock's value."""
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"


class LeaderLock:
    """The beat leader lock; `held` says whether this beat believes it may dispatch."""

    def __init__(self, client: redis.Redis, beat_id: str, ttl_s: float, key: str = keys.BEAT_LEADER_LOCK):
        self.client = client
        self.beat_id = beat_id
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.held = False
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Take the lock if free (or still ours); True when this beat now leads."""
        if self._acquire(keys=[self.key], args=[self.beat_id, self.ttl_ms]):
            log.info("beat %s: became leader (lock %s, ttl %d ms)", self.beat_id, self.key, self.ttl_ms)
            self.held = True
        return self.held

    def extend(self) -> tuple[bool, bytes | None]:
        """Extend our TTL if we still hold the lock; also returns the schedule generation (one round trip)."""
        still, generation = self._extend(
            keys=[self.key, keys.SCHEDULE_GENERATION], args=[self.beat_id, self.ttl_ms]
        )
        if not still and self.held:
            log.warning("beat %s: lost the leader lock %s; standing by", self.beat_id, self.key)
        self.held = bool(still)
        return self.held, generation

    def release(self) -> None:
        """Give the lock up on shutdown so a standby takes over at once, not after the TTL."""
        was_held, self.held = self.held, False
        if self._release(keys=[self.key], args=[self.beat_id]) and was_held:
            log.info("beat %s: released the leader lock %s", self.beat_id, self.key)

    def forget(self) -> None:
        """Stop believing we lead (after a Redis error we cannot tell; the lock may expire meanwhile)."""
        if self.held:
            log.warning("beat %s: leadership unknown after a Redis error; standing by", self.beat_id)
        self.held = False
