"""The one settings object, read once from the environment (no other module calls os.getenv)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.errors import ConfigurationError

#: The SECRET_KEY of a process whose environment sets none: the API, the worker and beat refuse it.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"


class Settings(BaseSettings):
    """Every tunable of the product, with its default; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = "sqlite:///./var/automation-worker.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    api_token: str = ""
    api_client_id: str = ""
    api_client_secret: str = ""
    secret_key: str = DEV_SECRET_KEY
    default_timezone: str = "UTC"
    api_port: int = 8000
    flower_port: int = 5555
    log_format: str = "text"
    log_level: str = "INFO"

    # beat
    beat_tick_s: Annotated[float, Field(gt=0, le=1.0)] = 1.0
    beat_batch_size: Annotated[int, Field(ge=1)] = 500
    beat_lock_ttl_s: Annotated[float, Field(gt=0)] = 5.0
    catch_up_grace_s: Annotated[int, Field(ge=0)] = 3600
    # what an operator sees: beat is stale when no leader ticked within this; an automation is late when a
    # slot is this far past with no run started; GET /metrics without the bearer token when true
    beat_stale_s: Annotated[float, Field(gt=0)] = 15.0
    late_after_s: Annotated[float, Field(gt=0)] = 120.0
    metrics_public: bool = False
    # /metrics and GET /api/v3/automations/health share the per-state row counts this long (0: never)
    health_counts_cache_s: Annotated[float, Field(ge=0)] = 10.0

    # runs
    # The run lock is extended by a heartbeat while its holder lives: a dead holder frees it within this.
    run_lock_ttl_s: Annotated[float, Field(gt=0)] = 30.0
    # How often beat looks for runs abandoned by a dead worker and dispatches them again.
    resume_sweep_s: Annotated[float, Field(gt=0)] = 30.0
    # The watermark never passes a run's start less this (records reaching the partner's API late).
    watermark_skew_s: Annotated[float, Field(ge=0)] = 5.0
    invoke_batch_size: Annotated[int, Field(ge=1)] = 100
    fetch_page_size: Annotated[int, Field(ge=1)] = 200
    retry_attempts: Annotated[int, Field(ge=1)] = 5
    retry_base_s: Annotated[float, Field(ge=0)] = 2.0
    retry_cap_s: Annotated[float, Field(ge=0)] = 60.0
    http_connect_timeout_s: Annotated[float, Field(gt=0)] = 5.0
    http_read_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    # The OAuth refresh lock lives connect + read timeouts plus this (and is extended while the POST runs).
    refresh_lock_margin_s: Annotated[float, Field(ge=0)] = 10.0
    # Partner limits: a permit that comes within this is waited for; a longer wait defers the run.
    budget_max_wait_s: Annotated[float, Field(ge=0)] = 10.0
    # A call-in-flight lease lives connect + read timeouts plus this (a killed worker's comes back then).
    budget_lease_margin_s: Annotated[float, Field(ge=0)] = 10.0
    max_chain_depth: Annotated[int, Field(ge=0)] = 10
    visibility_timeout_s: Annotated[int, Field(ge=1)] = 7200
    result_expires_s: Annotated[int, Field(ge=60)] = 86400
    sandbox_url: str = "http://127.0.0.1:8000/sandbox"
    # uvicorn's access lines for /sandbox requests (the demo's, every minute): off unless asked for
    sandbox_access_log: bool = False

    # the worker `automation-worker worker` and `make run` start (a plain `celery -A worker worker` keeps
    # Celery's own -P / -c): the pool and how many runs one worker process executes at once
    worker_pool: Annotated[str, Field(pattern="^(prefork|threads|gevent|solo)$")] = "threads"
    worker_concurrency: Annotated[int, Field(ge=1, le=1024)] = 64

    # `automation-worker run` (make run): where its SQLite file, dev token and embedded Redis live
    var_dir: str = "./var"


#: What `make run` records of the settings it chose (its secrets, URLs and ports), under VAR_DIR.
RECORDED_FILE = "stack.env"


def recorded_settings_file() -> Path | None:
    """VAR_DIR's (./var's) recorded settings when `make run` wrote them there, else None."""
    path = Path(os.environ.get("VAR_DIR", "").strip() or "./var") / RECORDED_FILE
    return path if path.is_file() else None


def environment_only() -> Settings:
    """The settings the environment gives, without what `make run` recorded (what `run` itself decides on)."""
    return Settings(_env_file=None)  # type: ignore[call-arg]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read on first use: the environment, then for what it leaves unset the
    settings `make run` recorded in this checkout's var/ (so every command of a checkout shares one
    configuration: the same SECRET_KEY, token, database, Redis and ports)."""
    return Settings(_env_file=recorded_settings_file())  # type: ignore[call-arg]


def api_tokens(value: str) -> list[str]:
    """API_TOKEN's tokens: comma-separated (to rotate without downtime), blanks dropped, in order."""
    return [token.strip() for token in value.split(",") if token.strip()]


def secret_problems(settings: Settings) -> list[str]:
    """What keeps a service from starting: no API token, or the development SECRET_KEY."""
    problems = []
    if not api_tokens(settings.api_token):
        problems.append("API_TOKEN is not set (what every API request must present; several may be given, "
                        "comma-separated)")
    keys = [key.strip() for key in settings.secret_key.split(",") if key.strip()]  # the first encrypts
    if not keys or DEV_SECRET_KEY in keys:
        problems.append("SECRET_KEY is " + ("empty" if not keys else
                                            "the development default") +
                        " (set a long random value: it encrypts the stored credentials)")
    return problems


def require_secrets(service: str, settings: Settings | None = None) -> None:
    """Refuse to run `service` without its secrets; `make run` (automation-worker run) generates both."""
    problems = secret_problems(settings or get_settings())
    if problems:
        raise ConfigurationError(f"{service} refuses to start: {'; '.join(problems)}. For local development "
                                 "`make run` generates both.")
