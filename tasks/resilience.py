"""A run that survives its services blinking: one more try of a bookkeeping statement after a dropped
database connection, and the errors that make the task retry later instead of failing its slot."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from models.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

#: Countdown of the task's own retries: 1, 2, 4 ... seconds (plus up to 1 s of jitter), at most this.
TASK_RETRY_CAP_S = 60.0


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` is a lost or refused database connection (worth one more try on a fresh one)."""
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError)


def once_more_on_disconnect(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` again once when its connection was cut (the pool's pre-ping hands out a live one);
    a second cut raises DatabaseUnavailable, so the task is retried rather than the run marked failed."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            log.warning("database connection lost in %s (%s: %s); trying once more on a fresh connection",
                        fn.__qualname__, type(exc).__name__, _first_line(exc))
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            raise DatabaseUnavailable(f"{fn.__qualname__}: {type(exc).__name__}: {_first_line(exc)}") from exc

    return wrapper


def task_countdown_s(retries: int) -> float:
    """Seconds before the task's next try: exponential from 1 s, capped, jittered so retries spread."""
    return min(TASK_RETRY_CAP_S, float(2 ** retries)) + random.uniform(0, 1)


def _first_line(exc: BaseException) -> str:
    """The first line of an error's text (SQLAlchemy appends the statement and a link)."""
    return str(exc).splitlines()[0] if str(exc) else ""
