"""Every Redis client of a process comes from here: one connection pool per (URL, timeouts, decoding).

The run path waits up to 10 s for an answer; the API and the command line use 1-2 s, so a dead Redis never
hangs a request or a terminal.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import redis

from models.settings import get_settings


def new_client(url: str, timeout_s: float = 10.0, connect_timeout_s: float = 5.0, decode: bool = True,
               **options: Any) -> redis.Redis:
    """A client of its own (its owner closes it): beat's, with its retry and health-check options."""
    return redis.Redis.from_url(url, socket_connect_timeout=connect_timeout_s, socket_timeout=timeout_s,
                                decode_responses=decode, **options)


@lru_cache(maxsize=16)
def client_for(url: str, timeout_s: float = 10.0, connect_timeout_s: float = 5.0,
               decode: bool = True) -> redis.Redis:
    """A shared client of `url` (cached: one pool per process for each distinct set of arguments)."""
    return new_client(url, timeout_s, connect_timeout_s, decode)


def redis_client() -> redis.Redis:
    """The process's Redis (REDIS_URL), as the run path uses it (decoded strings)."""
    return client_for(get_settings().redis_url)
