"""GET /health: is the database reachable, is Redis, does beat tick? Short timeouts, so it never hangs.

GET /health/beat is the probe for beat alone: 503 when no leader ticked within BEAT_STALE_S.
"""

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

from api.deps import RedisDep, SettingsDep
from models import db
from models.liveness import BeatLiveness, beat_liveness
from models.schemas.runs import BeatHealth, HealthResponse

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
def health(client: RedisDep, engine: Annotated[Engine, Depends(get_engine)],
           settings: SettingsDep) -> JSONResponse:
    """200 when the database and Redis both answer, 503 naming the part that does not. Beat's state is
    reported beside them (a stopped beat does not make the API itself unhealthy: see /health/beat)."""
    database, redis_state = _state("database", _database_ok, engine), _state("redis", _redis_ok, client)
    ok = database == "ok" and redis_state == "ok"
    beat = _beat(client, settings.beat_stale_s) if redis_state == "ok" else None
    body = HealthResponse(status="ok" if ok else "unavailable", database=database, redis=redis_state,
                          beat=_beat_body(beat))
    return JSONResponse(status_code=200 if ok else 503, content=body.model_dump())


@router.get("/health/beat", response_model=BeatHealth, operation_id="health_beat",
            responses={503: {"model": BeatHealth,
                             "description": "no beat leader ticked within BEAT_STALE_S"}})
def health_beat(client: RedisDep, settings: SettingsDep) -> JSONResponse:
    """200 when a beat leader ticked within BEAT_STALE_S; 503 when it is stale, absent, or Redis is down."""
    beat = _beat(client, settings.beat_stale_s)
    ok = beat is not None and beat.status == "ok"
    return JSONResponse(status_code=200 if ok else 503, content=_beat_body(beat).model_dump())


def _beat(client: RedisDep, stale_s: float) -> BeatLiveness | None:
    """Beat's liveness, None when Redis did not answer in time."""
    try:
        return _pool.submit(beat_liveness, client, stale_s).result(timeout=CHECK_TIMEOUT_S)
    except Exception as exc:  # Redis down or slow: beat's state is unknown
        log.warning("health: beat's last tick unreadable: %s", type(exc).__name__)
        return None


def _beat_body(beat: BeatLiveness | None) -> BeatHealth:
    """The `beat` part; `unknown` when Redis could not be read."""
    if beat is None:
        return BeatHealth(status="unknown", last_tick_age_s=None)
    return BeatHealth(status=beat.status, last_tick_age_s=beat.last_tick_age_s)
