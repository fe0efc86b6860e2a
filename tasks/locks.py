"""Redis locks with an owner token: only the holder releases or extends a lock; a heartbeat keeps it alive."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from models.errors import LockLost
from models.redis_clients import redis_client

log = logging.getLogger(__name__)

# Compare-and-delete / compare-and-expire: atomic, so a lock that expired and was taken
# by someone else is never released or extended by its previous holder.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
# Extend, and read another key in the same round trip (beat's idle tick: the schedule generation).
_EXTEND_AND_READ = """
local other = redis.call('get', KEYS[2])
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  if KEYS[3] then
    redis.call('set', KEYS[3], ARGV[3])
  end
  return {1, other}
end
return {0, other}
"""
# Take a free lock, or re-adopt our own (after a Redis blip the holder cannot tell whether it still holds).
_TAKE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Lock:
    """A named lock whose value is its holder's token; TTL bounds how long a dead holder blocks others.

    The run lock and beat's leader lock are both this lock. Its scripts are sent once and then called by
    their SHA (EVALSHA).
    """

    def __init__(self, key: str, ttl_s: float, client: redis.Redis | None = None) -> None:
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.client = client or redis_client()
        self._extend = self.client.register_script(_EXTEND)
        self._release = self.client.register_script(_RELEASE)
        self._extend_and_read = self.client.register_script(_EXTEND_AND_READ)
        self._take = self.client.register_script(_TAKE)

    def acquire(self, token: str) -> bool:
        """Take the lock if free."""
        return bool(self.client.set(self.key, token, nx=True, px=self.ttl_ms))

    def take(self, token: str) -> bool:
        """Take the lock if free, or keep it if `token` already holds it."""
        return bool(self._take(keys=[self.key], args=[token, self.ttl_ms]))

    def holder(self) -> str | None:
        """The current holder's token, None when free."""
        value = self.client.get(self.key)
        return str(value) if value is not None else None

    def remaining_s(self) -> float:
        """Seconds until the lock expires unless extended (0 when free)."""
        return max(0.0, int(self.client.pttl(self.key)) / 1000)

    def extend(self, token: str) -> bool:
        """Restart the TTL while still the holder."""
        return bool(self._extend(keys=[self.key], args=[token, self.ttl_ms]))

    def extend_and_read(self, token: str, other_key: str,
                        stamp: tuple[str, str] | None = None) -> tuple[bool, Any]:
        """Restart the TTL while still the holder, and read `other_key`, in one round trip; while the holder,
        also set `stamp` (key, value): beat's leader records its tick so."""
        extra_keys, extra_args = ([stamp[0]], [stamp[1]]) if stamp else ([], [])
        still, other = self._extend_and_read(keys=[self.key, other_key, *extra_keys],
                                             args=[token, self.ttl_ms, *extra_args])
        return bool(still), other

    def release(self, token: str) -> bool:
        """Free the lock if still the holder."""
        return bool(self._release(keys=[self.key], args=[token]))


class Heartbeat:
    """Keeps a held lock alive while its holder works, so the lock lives exactly as long as its holder.

    A daemon thread extends the lock every third of its TTL: a holder that dies (SIGKILL, a lost machine)
    stops extending, and its lock frees within one TTL; a holder that is alive, however long it waits (a
    slow partner, a long Retry-After), keeps it. `held()` is what the holder checks before each effect,
    and `confirm()` re-extends synchronously right before one. Redis errors are not a loss by themselves,
    but a lock not extended for most of its TTL is no longer trusted.
    """

    def __init__(self, lock: Lock, token: str, interval_s: float | None = None) -> None:
        self.lock = lock
        self.token = token
        self.ttl_s = lock.ttl_ms / 1000
        self.interval_s = interval_s if interval_s is not None else max(0.05, self.ttl_s / 3)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._last_ok = time.monotonic()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Heartbeat:
        """Start extending in the background (the lock must already be held with `token`)."""
        self._last_ok = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {self.lock.key}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop extending (the holder then releases the lock, or leaves it to its TTL)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ttl_s)

    def held(self) -> bool:
        """Whether the lock is still ours as far as we know: never reported lost, extended recently."""
        return not self._lost.is_set() and time.monotonic() - self._last_ok < self.ttl_s * 0.8

    def confirm(self) -> bool:
        """Extend now and say whether the lock is ours (on a Redis error: what `held()` says)."""
        self._beat()
        return self.held()

    def check(self, what: str) -> None:
        """Raise LockLost unless the lock is confirmed ours right now (called before each effect)."""
        if not self.confirm():
            raise LockLost(f"{self.lock.key}: lock lost before {what}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._beat():
                return

    def _beat(self) -> bool:
        """One extension; False once the lock is known to be someone else's (or gone)."""
        if self._lost.is_set():
            return False
        try:
            ok = self.lock.extend(self.token)
        except redis.RedisError as exc:
            log.warning("could not extend lock %s (%s: %s); trying again in %.1f s",
                        self.lock.key, type(exc).__name__, exc, self.interval_s)
            return True
        if ok:
            self._last_ok = time.monotonic()
            return True
        self._lost.set()
        log.warning("lock %s was lost (expired or taken over): its holder stops before its next effect",
                    self.lock.key)
        return False
