"""Request-scoped dependencies: the session (one transaction per request), Redis, the settings.

The page asked for (limit, offset, sort) is api.query.page_of."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import redis
from fastapi import Depends
from sqlalchemy.orm import Session

from models import db
from models.notify import schedule_changed
from models.redis_clients import client_for
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


def get_redis() -> redis.Redis:
    """The process's Redis client for REDIS_URL, with short timeouts so a dead Redis never hangs a request."""
    return client_for(get_settings().redis_url, REDIS_TIMEOUT_S, REDIS_TIMEOUT_S, decode=False)


def notify_beat(client: redis.Redis) -> None:
    """After a commit that can move a next_run_at: beat re-reads the earliest due time."""
    schedule_changed(client)


SessionDep = Annotated[Session, Depends(get_session)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
