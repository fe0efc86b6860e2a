"""Database engine and sessions, shared by the API, beat and the workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from models.settings import get_settings


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` / `postgres://` spellings and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for this workload: WAL and a busy timeout on SQLite, pre-ping on servers."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 1800)
    # A thread-pool worker (WORKER_POOL=threads, 64) has many short transactions at once: SQLAlchemy's
    # default of 5 pooled connections made it open a new PostgreSQL session for about a third of its runs.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a file database so a fresh clone starts without a manual step."""
    import os

    path = url.split("///", 1)[-1] if "///" in url else ""
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Foreign keys on, WAL so readers do not block the writer, and a generous busy timeout."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def get_engine(url: str | None = None) -> Engine:
    """The process's engine for DATABASE_URL (or the given URL): one per resolved URL, so `get_engine()`,
    `get_engine(None)` and `get_engine(<DATABASE_URL>)` share one pool."""
    return _engine_for(_resolve(url))


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """Session factory bound to the process's engine; objects stay readable after commit."""
    return _sessionmaker_for(_resolve(url))


def _resolve(url: str | None) -> str:
    """The URL a cache is keyed by: the setting when none is given, in its normalised spelling."""
    return normalise_url(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    """One engine per resolved URL per process."""
    return make_engine(url)


@lru_cache(maxsize=4)
def _sessionmaker_for(url: str) -> sessionmaker[Session]:
    """One session factory per resolved URL, on that URL's engine."""
    return sessionmaker(bind=_engine_for(url), expire_on_commit=False)


def clear_caches() -> None:
    """Forget every cached engine and session factory (the environment's DATABASE_URL changed)."""
    _engine_for.cache_clear()
    _sessionmaker_for.cache_clear()


@contextmanager
def connection_scope(url: str | None = None) -> Iterator[Connection]:
    """One Core transaction on the sessions' engine, for hot paths that need no ORM unit of work."""
    with get_engine(url).begin() as conn:  # get_engine(url), as get_sessionmaker calls it: the same engine
        yield conn


@contextmanager
def autocommit_scope(url: str | None = None) -> Iterator[Connection]:
    """A connection on which each statement commits on its own: a one-statement read or write is one
    round trip (no BEGIN, no COMMIT)."""
    with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error, always close."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
