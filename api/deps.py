"""Request-scoped dependencies: the session (one transaction per request), Redis, the settings.

The page asked for (limit, offset, sort) is api.query.page_of."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends
from sqlalchemy.orm import Session

from models import db
from models.notify import schedule_changed
from models.settings import Settings, get_settings

REDIS_TIMEOUT_S = 1.0


def get_session() -> Iterator[Session]:
    """A session for one request: routes commit at their end; anything uncommitted is rolled back."""
    session = db.get_sessionmaker()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """A Redis client with short timeouts, so a dead Redis never hangs a request."""
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)


def get_redis() -> redis.Redis:
    """The process's Redis client for REDIS_URL."""
    return redis_client(get_settings().redis_url)


def notify_beat(client: redis.Redis) -> None:
    """After a commit that can move a next_run_at: beat re-reads the earliest due time."""
    schedule_changed(client)


SessionDep = Annotated[Session, Depends(get_session)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
