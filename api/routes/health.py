"""GET /health: is the database reachable, is Redis? Short timeouts, so it never hangs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Annotated, TypeVar

import redis
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from api.deps import RedisDep
from models import db
from models.schemas.runs import HealthResponse

log = logging.getLogger(__name__)
T = TypeVar("T")

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_S = 2.0
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")


def get_engine() -> Engine:
    """The engine whose database /health checks (a dependency, so tests can point it elsewhere)."""
    return db.get_engine()


def _database_ok(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis_ok(client: redis.Redis) -> None:
    client.ping()


def _state(name: str, check: Callable[[T], None], arg: T) -> str:
    """"ok", or what went wrong (the error's type only: a message could carry a URL with a password)."""
    try:
        _pool.submit(check, arg).result(timeout=CHECK_TIMEOUT_S)
        return "ok"
    except FutureTimeout:
        log.warning("health: %s did not answer within %.1f s", name, CHECK_TIMEOUT_S)
        return "unavailable: timeout"
    except Exception as exc:  # any failure of the check means the part is down
        log.warning("health: %s is down: %s", name, type(exc).__name__)
        return f"unavailable: {type(exc).__name__}"


@router.get("/health", response_model=HealthResponse, operation_id="health",
            responses={503: {"model": HealthResponse, "description": "the database or Redis is down"}})
def health(client: RedisDep, engine: Annotated[Engine, Depends(get_engine)]) -> JSONResponse:
    """200 when the database and Redis both answer, 503 naming the part that does not."""
    database, redis_state = _state("database", _database_ok, engine), _state("redis", _redis_ok, client)
    ok = database == "ok" and redis_state == "ok"
    body = HealthResponse(status="ok" if ok else "unavailable", database=database, redis=redis_state)
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())
