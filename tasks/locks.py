"""Redis locks with an owner token: only the holder releases, extends or hands over a lock."""

from __future__ import annotations

from functools import lru_cache

import redis

from models.settings import get_settings

# Compare-and-delete / compare-and-expire / compare-and-set: atomic, so a lock that expired and was taken
# by someone else is never released or extended by its previous holder.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)
_STEAL = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) and 1 end return 0"
)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    """One connection pool per Redis URL per process."""
    return redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10, decode_responses=True)


def redis_client() -> redis.Redis:
    """The process's Redis (REDIS_URL)."""
    return _client(get_settings().redis_url)


class Lock:
    """A named lock whose value is its holder's token; TTL bounds how long a dead holder blocks others."""

    def __init__(self, key: str, ttl_s: float, client: redis.Redis | None = None) -> None:
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.client = client or redis_client()

    def acquire(self, token: str) -> bool:
        """Take the lock if free."""
        return bool(self.client.set(self.key, token, nx=True, px=self.ttl_ms))

    def holder(self) -> str | None:
        """The current holder's token, None when free."""
        value = self.client.get(self.key)
        return str(value) if value is not None else None

    def steal(self, expected: str, token: str) -> bool:
        """Take over the lock from `expected` (a holder known to be dead), atomically."""
        return bool(self.client.eval(_STEAL, 1, self.key, expected, token, self.ttl_ms))

    def extend(self, token: str) -> bool:
        """Restart the TTL while still the holder."""
        return bool(self.client.eval(_EXTEND, 1, self.key, token, self.ttl_ms))

    def release(self, token: str) -> bool:
        """Free the lock if still the holder."""
        return bool(self.client.eval(_RELEASE, 1, self.key, token))
