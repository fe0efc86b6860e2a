"""Request-scoped dependencies: the session (one transaction per request), Redis, the page asked for."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends, Query
from sqlalchemy.orm import Session

from api.services.listing import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
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


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")] = 0,
    sort: Annotated[str | None, Query(max_length=200, description="e.g. created_at or -updated_at")] = None,
) -> PageRequest:
    """limit (1..500, default 50), offset and sort from the query string."""
    return PageRequest(limit=limit, offset=offset, sort=sort)


def notify_beat(client: redis.Redis) -> None:
    """After a commit that can move a next_run_at: beat re-reads the earliest due time."""
    schedule_changed(client)


SessionDep = Annotated[Session, Depends(get_session)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
PageDep = Annotated[PageRequest, Depends(page_request)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
