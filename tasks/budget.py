"""A connection's budget: every call to its integration API takes a permit first, shared by every worker
process on every machine (DESIGN "Partner limits").

One Lua script per permit, one round trip, atomic: it checks the connection's pause (a 429's Retry-After,
for everyone), the rolling minute and day, the app-wide minute of (provider, client_id), and the calls in
flight, then records the call in all of them. Windows are exact sliding logs, the way the `limits`
library's moving window keeps them (a Redis list of call times capped at the limit: the limit-th newest
entry says whether the window is full and when it frees), so no 60-second window ever holds more calls
than the per-minute limit and no 24-hour window more than the daily one. Calls in flight are leases in a
sorted set scored by their expiry, so a SIGKILLed worker's lease comes back within its TTL. `limits`
itself checks one limit per round trip and has neither leases nor a shared pause, hence this script.

A permit that comes within BUDGET_MAX_WAIT_S is waited for (sleeping the wait the script names, no hot
polling); a longer wait raises BudgetExceeded, and the run defers itself until then.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis

from models import keys
from models.base import utcnow
from models.errors import BudgetExceeded
from models.limits import Limits
from models.redis_clients import redis_client
from models.settings import get_settings

log = logging.getLogger(__name__)

MINUTE_MS, DAY_MS = 60_000, 86_400_000
CONCURRENT_STEP_MS = 100  # the longest sleep while waiting for a call in flight to end
MAX_WAITS = 10_000  # bounded wait loop (the time bound is BUDGET_MAX_WAIT_S)

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per_minute, per_day = tonumber(ARGV[1]), tonumber(ARGV[2])
local concurrent, app_per_minute = tonumber(ARGV[3]), tonumber(ARGV[4])
local lease, lease_ms = ARGV[5], tonumber(ARGV[6])
local pause = redis.call('GET', KEYS[1])
if pause then
  local until_ms = tonumber(string.match(pause, '^(%d+)'))
  if until_ms and until_ms > now then return {0, until_ms - now, 'paused', now} end
end
local function full(key, limit, window)
  if limit <= 0 then return 0 end
  local oldest = redis.call('LINDEX', key, limit - 1)
  if oldest and tonumber(oldest) > now - window then return tonumber(oldest) + window - now end
  return 0
end
local wait = full(KEYS[2], per_minute, 60000)
if wait > 0 then return {0, wait, 'per_minute', now} end
wait = full(KEYS[3], per_day, 86400000)
if wait > 0 then return {0, wait, 'per_day', now} end
wait = full(KEYS[5], app_per_minute, 60000)
if wait > 0 then return {0, wait, 'app_per_minute', now} end
if concurrent > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  if redis.call('ZCARD', KEYS[4]) >= concurrent then
    local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    return {0, math.max(1, tonumber(first[2]) - now), 'concurrent', now}
  end
  redis.call('ZADD', KEYS[4], now + lease_ms, lease)
  redis.call('PEXPIRE', KEYS[4], lease_ms)
end
local function log_call(key, limit, window)
  if limit <= 0 then return end
  redis.call('LPUSH', key, now)
  redis.call('LTRIM', key, 0, limit - 1)
  redis.call('PEXPIRE', key, window)
end
log_call(KEYS[2], per_minute, 60000)
log_call(KEYS[3], per_day, 86400000)
log_call(KEYS[5], app_per_minute, 60000)
return {1, 0, 'ok', now}
"""

# The partner says how many calls are left in its windows: each log is filled up to (limit - remaining)
# entries of now, so the budget never lets through more than the partner will take (other apps of the
# tenant share it). One round trip for all three windows; O(1) when the log already holds that many (the
# usual case: LINDEX of the entry that would have to be there), a count only when it must be filled.
_FOLLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local filled = 0
for i, key in ipairs(KEYS) do
  local limit, remaining = tonumber(ARGV[i * 3 - 2]), tonumber(ARGV[i * 3 - 1])
  local window = tonumber(ARGV[i * 3])
  local needed = limit - remaining
  if limit > 0 and remaining >= 0 and needed > 0 then
    local at = redis.call('LINDEX', key, needed - 1)
    if not (at and tonumber(at) > now - window) then
      local used = 0
      for _, v in ipairs(redis.call('LRANGE', key, 0, needed - 1)) do
        if tonumber(v) > now - window then used = used + 1 end
      end
      for _ = 1, needed - used do redis.call('LPUSH', key, now) end
      redis.call('LTRIM', key, 0, limit - 1)
      redis.call('PEXPIRE', key, window)
      filled = filled + needed - used
    end
  end
end
return filled
"""

_STATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function used(key, window)
  local n = 0
  for _, v in ipairs(redis.call('LRANGE', key, 0, -1)) do if tonumber(v) > now - window then n = n + 1 end end
  return n
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
return {used(KEYS[2], 60000), used(KEYS[3], 86400000), redis.call('ZCARD', KEYS[4]),
        redis.call('GET', KEYS[1]) or '', now}
"""


@dataclass(frozen=True)
class Scope:
    """Whose budget a call takes: the connection's, its provider app's, its account's (no secrets)."""

    connection_uuid: str
    provider: str
    limits: Limits
    client_id: str | None = None
    account_id: str | None = None

    def redis_keys(self) -> list[str]:
        """pause, minute log, day log, leases, app minute log (in the scripts' KEYS order)."""
        base = f"{keys.PREFIX}budget:{self.connection_uuid}"
        leases = f"{base}:leases"
        if self.limits.account_wide and self.account_id:
            leases = f"{keys.PREFIX}budget:account:{self.provider}:{_digest(self.account_id)}:leases"
        app = f"{keys.PREFIX}budget:app:{self.provider}:{_digest(self.client_id or '-')}:minute"
        return [f"{base}:pause", f"{base}:minute", f"{base}:day", leases, app]


def _digest(value: str) -> str:
    """A short stable digest: identifiers in key names, never a client id in clear."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclass
class Usage:
    """What a run's calls met: time waited for permits, and 429s received (recorded on the run); calls
    answered ok or with an error, by provider (the metrics, tasks/metrics.py)."""

    wait_s: float = 0.0
    throttled: int = 0
    paused_reasons: list[str] = field(default_factory=list)
    provider: str = ""
    ok: int = 0
    errors: int = 0


class Budget:
    """Permits for one connection's calls; `usage` accumulates over the run that owns this object."""

    def __init__(self, scope: Scope, client: redis.Redis | None = None) -> None:
        self.scope = scope
        self.client = client or redis_client()
        self.keys = scope.redis_keys()
        self.usage = Usage(provider=scope.provider)
        s = get_settings()
        self.max_wait_s = s.budget_max_wait_s
        lease_s = s.http_connect_timeout_s + s.http_read_timeout_s + s.budget_lease_margin_s
        self.lease_ms = int(lease_s * 1000)
        # Sent once, then called by SHA (EVALSHA; redis-py sends the text again after a NOSCRIPT).
        self._acquire = self.client.register_script(_ACQUIRE)
        self._follow = self.client.register_script(_FOLLOW)
        self._state = self.client.register_script(_STATE)

    @contextmanager
    def permit(self, what: str) -> Iterator[None]:
        """Hold one permit for one call (waited for, or BudgetExceeded); the lease is returned after it."""
        lease = self.acquire(what)
        try:
            yield
        finally:
            self.release(lease)

    def acquire(self, what: str) -> str | None:
        """Take a permit, waiting up to BUDGET_MAX_WAIT_S in all; the lease id (None when unlimited)."""
        limits = self.scope.limits
        lease = uuid.uuid4().hex if limits.concurrent else None
        began = time.monotonic()
        for _ in range(MAX_WAITS):
            granted, wait_ms, limit, _now = self._acquire(keys=self.keys, args=[
                limits.per_minute or 0, limits.per_day or 0, limits.concurrent or 0,
                limits.app_per_minute or 0, lease or "-", self.lease_ms])
            if int(granted):
                self.usage.wait_s += time.monotonic() - began
                return lease
            wait_s = int(wait_ms) / 1000
            if str(limit) == "concurrent":
                wait_s = min(wait_s, CONCURRENT_STEP_MS / 1000)
            waited = time.monotonic() - began
            if waited + wait_s > self.max_wait_s:
                self.usage.wait_s += waited
                raise self._exceeded(_text(limit), int(wait_ms) / 1000, what)
            time.sleep(wait_s)
        raise self._exceeded("permit", self.max_wait_s, what)

    def release(self, lease: str | None) -> None:
        """Return a call-in-flight lease (a Redis error leaves it to its TTL)."""
        if lease is None:
            return
        try:
            self.client.zrem(self.keys[3], lease)
        except redis.RedisError as exc:
            log.warning("budget of connection %s: lease not returned (%s); it expires in %d ms",
                        self.scope.connection_uuid, type(exc).__name__, self.lease_ms)

    def pause(self, seconds: float, reason: str) -> None:
        """Pause the whole connection for every worker (the partner said so), keeping a later pause."""
        until_ms = int((time.time() + max(0.0, seconds)) * 1000)
        current = self.client.get(self.keys[0])
        if current is not None and int(str(_decoded(current)).split("|", 1)[0]) >= until_ms:
            return
        self.client.set(self.keys[0], f"{until_ms}|{reason}", px=max(1, int(seconds * 1000)))
        self.usage.paused_reasons.append(reason)
        log.warning("connection %s (%s) paused for %.0f s: %s", self.scope.connection_uuid,
                    self.scope.provider, seconds, reason)

    def follow(self, headers: Mapping[str, str]) -> None:
        """Follow the partner's remaining counts (Xero's X-MinLimit-Remaining / X-DayLimit-Remaining /
        X-AppMinLimit-Remaining) where it sends them: one round trip for all of them, none without."""
        limits = self.scope.limits
        keys_: list[str] = []
        args: list[int] = []
        for header, limit, key, window in (
                ("X-MinLimit-Remaining", limits.per_minute, self.keys[1], MINUTE_MS),
                ("X-DayLimit-Remaining", limits.per_day, self.keys[2], DAY_MS),
                ("X-AppMinLimit-Remaining", limits.app_per_minute, self.keys[4], MINUTE_MS)):
            value = headers.get(header)
            if value is None or not limit or not value.strip().isdigit():
                continue
            remaining = min(int(value), limit)
            if remaining < limit:
                keys_.append(key)
                args.extend((limit, remaining, window))
        if keys_:
            self._follow(keys=keys_, args=args)

    def _exceeded(self, limit: str, wait_s: float, what: str) -> BudgetExceeded:
        """The deferral: which limit, until when, in one sentence (no secrets)."""
        resume_at = utcnow() + timedelta(seconds=wait_s)
        paused = self._pause_reason() if limit == "paused" else None
        why = paused or f"{self.scope.provider} {limit} limit reached"
        when = resume_at.isoformat(timespec="seconds")
        return BudgetExceeded(f"{why}; resumes at {when} ({what})", resume_at)

    def _pause_reason(self) -> str | None:
        """The reason stored with the connection's pause."""
        value = self.client.get(self.keys[0])
        text = str(_decoded(value)) if value is not None else ""
        return text.split("|", 1)[1] if "|" in text else None

    def state(self) -> dict[str, Any]:
        """Used this minute, used today, in flight, paused until (and why): for connection details."""
        minute, day, in_flight, pause, _now = self._state(keys=self.keys)
        pause_text = str(_decoded(pause))
        until, _, why = pause_text.partition("|")
        paused_until = (datetime.fromtimestamp(int(until) / 1000, tz=utcnow().tzinfo).isoformat()
                        if until.isdigit() and int(until) > time.time() * 1000 else None)
        return {"used_this_minute": int(minute), "used_today": int(day), "in_flight": int(in_flight),
                "paused_until": paused_until, "paused_reason": why if paused_until else None}


def _text(limit: Any) -> str:
    """A limit's name as the script returns it (bytes or text)."""
    return str(_decoded(limit)).replace("_", "-")


def _decoded(value: Any) -> Any:
    """Text for bytes (the client may or may not decode responses)."""
    return value.decode() if isinstance(value, bytes) else value
