"""Thin routes: parse the request, call one service function, commit, answer in the seed's shape."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy.orm import Session

from api.deps import notify_beat

V3 = "/api/v3"
V2 = "/api/v2"
# FastAPI's `responses` type; a dict literal would be inferred as dict[int, dict[str, str]] (invariant).
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer token"},
    404: {"description": "unknown UUID"},
    422: {"description": "invalid request; every bad field is named"},
}


def commit(session: Session, client: redis.Redis | None = None) -> None:
    """End the request's transaction; tell beat when a next_run_at may have moved."""
    session.commit()
    if client is not None:
        notify_beat(client)
