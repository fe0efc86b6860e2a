"""Tell beat that a next_run_at moved, so it re-reads the earliest due time on its next tick."""

from __future__ import annotations

import logging

import redis

from models import keys

log = logging.getLogger(__name__)


def schedule_changed(client: redis.Redis) -> None:
    """Bump the schedule generation; a Redis error is logged, not raised (beat also re-reads every minute)."""
    try:
        client.incr(keys.SCHEDULE_GENERATION)
    except (redis.RedisError, OSError) as exc:
        log.warning("could not notify beat of a schedule change: %s", exc)
