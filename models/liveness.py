"""Beat's liveness as an operator sees it: the age of the leader's last tick, read from Redis.

The leader writes the tick's time in the script that extends its lock (worker/leader.py), so a beat whose
process lives but whose tick loop is stuck stops writing it and shows `stale`, unlike a ping would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import redis

from models import keys

BeatStatus = Literal["ok", "stale", "absent"]


@dataclass(frozen=True)
class BeatLiveness:
    """`ok` when a leader ticked within the stale limit; `absent` when none ever ticked on this Redis."""

    status: BeatStatus
    last_tick_age_s: float | None
    last_tick_at: float | None

    def to_dict(self) -> dict[str, object]:
        """The `beat` part of /health."""
        return {"status": self.status, "last_tick_age_s": self.last_tick_age_s}


def last_tick_at(client: redis.Redis) -> float | None:
    """The Unix time of the leader's last tick, None when no leader ever ticked."""
    raw = client.get(keys.BEAT_LAST_TICK)
    return float(raw) if raw is not None else None


def beat_liveness(client: redis.Redis, stale_s: float, now: float | None = None) -> BeatLiveness:
    """Read the last tick and judge it against `stale_s` (BEAT_STALE_S)."""
    at = last_tick_at(client)
    if at is None:
        return BeatLiveness("absent", None, None)
    age_s = max(0.0, (time.time() if now is None else now) - at)
    return BeatLiveness("ok" if age_s <= stale_s else "stale", round(age_s, 3), at)
