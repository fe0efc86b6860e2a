"""Thin routes: parse the request, call one service function, commit, answer in the seed's shape."""

from __future__ import annotations

import redis
from sqlalchemy.orm import Session

from api.deps import notify_beat

V3 = "/api/v3"
V2 = "/api/v2"


def commit(session: Session, client: redis.Redis | None = None) -> None:
    """End the request's transaction; tell beat when a next_run_at may have moved."""
    session.commit()
    if client is not None:
        notify_beat(client)
