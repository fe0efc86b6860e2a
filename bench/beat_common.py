"""Shared set-up of the beat benchmarks: a private Redis, throwaway databases, bulk-loaded automations."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    """A free loopback TCP port for the private Redis."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on loopback (no persistence), so 1M RedBeat keys bother nobody."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="aw-bench-redis-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(url).ping():
                    break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def fresh_database(kind: str, name: str) -> Iterator[str]:
    """An empty database: a SQLite file, or a PostgreSQL database created here and dropped after."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="aw-bench-db-")
        try:
            yield f"sqlite:///{folder}/{name}.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def load_automations(url: str, n: int, next_run_at: datetime, check_on: str = "1 hour") -> None:
    """Migrate, then N automations: one made through the models, cloned server-side (INSERT ... SELECT)."""
    from models import migrate
    from models.db import make_engine
    from models.tables import Automation

    migrate.upgrade(url)
    engine = make_engine(url)
    template_id = _template(engine, next_run_at, check_on)
    cols = [c.name for c in Automation.__table__.columns if c.name != "id"]
    pg = engine.dialect.name == "postgresql"
    uuid_sql = "gen_random_uuid()::text" if pg else "lower(hex(randomblob(16)))"
    picked = ", ".join(uuid_sql if c == "uuid" else ("'c' || g.x" if c == "code" else f"a.{c}") for c in cols)
    series = "generate_series(1, :n) AS g(x)" if pg else "g"
    prefix = "" if pg else "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n) "
    sql = (f"{prefix}INSERT INTO automations ({', '.join(cols)}) "
           f"SELECT {picked} FROM automations a, {series} WHERE a.id = :t")
    with engine.begin() as conn:
        conn.execute(text(sql), {"n": n - 1, "t": template_id})
        if pg:
            conn.execute(text("ANALYZE automations"))
    engine.dispose()


def _template(engine: object, next_run_at: datetime, check_on: str) -> int:
    """One automation written through the models, so every column has a valid value."""
    from sqlalchemy.orm import Session

    from tests.support.factories import make_automation, make_connection

    with Session(engine) as db:  # type: ignore[call-overload]
        conn = make_connection(db)
        auto = make_automation(db, conn, next_run_at=next_run_at, check_on=check_on, code="template")
        db.commit()
        return int(auto.id)


def tomorrow() -> datetime:
    """A next_run_at nobody reaches during a benchmark: nothing due."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def rss_mb() -> float:
    """This process's resident set size in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
