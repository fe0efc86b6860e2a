"""Per-run cost of `automations.run`, in process: SQL statements, commits, HTTP requests, new TCP
connections, Redis commands, and the time of each step (no Celery: what the task body itself costs).

    .venv/bin/python bench/profile_run.py [--runs 200] [--database-url postgresql+psycopg://...]

A fresh SQLite file, or with --database-url (or TEST_DATABASE_URL) a fresh PostgreSQL database beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COUNTS: Counter[str] = Counter()
TIMES: Counter[str] = Counter()


def _count_sql() -> None:
    """Every statement and every COMMIT the process's engine sends."""
    from sqlalchemy import event

    from models.db import get_sessionmaker

    engine = get_sessionmaker().kw["bind"]  # the runs' engine (get_engine() is another cache entry)

    @event.listens_for(engine, "before_cursor_execute")
    def _stmt(_conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        """One statement; SELECTs counted apart."""
        COUNTS["sql"] += 1
        COUNTS["sql " + statement.split(None, 1)[0].upper()] += 1

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        """One COMMIT; those after a write counted apart."""
        COUNTS["commits"] += 1
        if conn.info.pop("wrote", False):
            COUNTS["commits after a write"] += 1

    @event.listens_for(engine, "after_cursor_execute")
    def _wrote(conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        """Remember that this transaction wrote."""
        if statement.split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            conn.info["wrote"] = True


def _count_redis_and_tcp() -> None:
    """Redis commands (pipelines count once) and new HTTP connections (keep-alive misses)."""
    import redis
    import urllib3.connection

    plain, piped, connect = (redis.Redis.execute_command, redis.client.Pipeline.execute,
                             urllib3.connection.HTTPConnection.connect)

    def command(self: Any, *args: Any, **kw: Any) -> Any:
        COUNTS["redis"] += 1
        COUNTS[f"redis {args[0]}"] += 1
        return plain(self, *args, **kw)

    def pipeline(self: Any, *args: Any, **kw: Any) -> Any:
        COUNTS["redis"] += 1
        return piped(self, *args, **kw)

    def tcp(self: Any) -> Any:
        COUNTS["http connects"] += 1
        return connect(self)

    redis.Redis.execute_command = command  # type: ignore[method-assign]
    redis.client.Pipeline.execute = pipeline  # type: ignore[method-assign]
    urllib3.connection.HTTPConnection.connect = tcp  # type: ignore[method-assign]


def _timed(module: Any, name: str, label: str) -> None:
    """Accumulate the wall time and this thread's CPU time of `module.name` under `label`."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kw: Any) -> Any:
        t0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kw)
        finally:
            TIMES[label] += time.perf_counter() - t0
            TIMES[f"{label}, cpu"] += time.thread_time() - cpu0

    setattr(module, name, wrapper)


def _time_steps() -> None:
    """The steps of a run, as the run module and the execution module call them."""
    from tasks import execution, observe, run, run_record

    for name in ("fetch_records", "invoke_batch"):
        if hasattr(execution, name):
            _timed(execution, name, name)
    _timed(run_record, "look_up", "run_record.look_up")
    _timed(run_record, "batch_sent", "run_record.batch_sent")
    _timed(run_record.Claim, "claim", "Claim.claim")
    _timed(run_record.Claim, "finish", "Claim.finish")
    _timed(run, "_acquire", "lock acquire")
    _timed(run.Lock, "release", "lock release")
    _timed(observe, "run_ended", "observe.run_ended (health + metrics)")


@contextmanager
def _database(tmp: Path, url: str | None) -> Iterator[str]:
    """A fresh database, migrated."""
    from models import migrate
    from tests.support.services import fresh_database

    if url:
        os.environ["TEST_DATABASE_URL"] = url
    with fresh_database(tmp) as db_url:
        migrate.upgrade(db_url)
        yield db_url


def _fresh_caches() -> None:
    """Settings, engine and session factory read again from the environment just set."""
    from models import db as db_module
    from models.settings import get_settings

    get_settings.cache_clear()
    db_module.clear_caches()


def _setup(n: int, server_url: str) -> list[str]:
    """n automations with one matching record each time."""
    from models.db import session_scope
    from tests.support.factories import make_automation, make_connection, make_partner_function

    with session_scope() as db:
        conn = make_connection(db, api_domain=server_url, account_server=server_url)
        pf = make_partner_function(db, conn)
        return [make_automation(db, conn, pf, code=f"p{i}", name=f"Profile {i}",
                                watermark_at=datetime(2020, 1, 1, tzinfo=UTC)).uuid for i in range(n)]


def _measure(uuids: list[str], server: Any, execute: Callable[..., dict[str, Any]]) -> float:
    """Run each automation once; seconds taken."""
    slot = (datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)).isoformat()
    start, cpu = time.perf_counter(), time.thread_time()
    for uuid in uuids:
        summary = execute(uuid, slot)
        assert summary["status"] == "succeeded", summary
    TIMES["cpu of this thread (the task body)"] += time.thread_time() - cpu
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--cprofile", metavar="FILE", help="also write a cProfile of the measured runs")
    args = parser.parse_args()
    from tests.support.integration_server import IntegrationServer
    from tests.support.services import redis_server

    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url, \
            _database(Path(tmp), args.database_url) as db_url:
        os.environ.update(DATABASE_URL=db_url, REDIS_URL=redis_url, SECRET_KEY="profile-secret",
                          API_TOKEN="profile-token", LOG_LEVEL="WARNING")
        _fresh_caches()
        server = IntegrationServer().start()
        server.set_records("supplier", [{"id": "r1", "created_at": "2024-01-01T00:00:00+00:00",
                                         "updated_at": "2024-01-01T00:00:00+00:00", "Name": "Acme"}])
        uuids = _setup(args.warm_up + args.runs, server.url)
        from tasks.run import execute

        _count_sql()
        _count_redis_and_tcp()
        _time_steps()
        _measure(uuids[:args.warm_up], server, execute)
        COUNTS.clear()
        TIMES.clear()
        requests_before = len(server.state.fetches) + len(server.state.invocations)
        profiler = cProfile.Profile() if args.cprofile else None
        if profiler:
            profiler.enable()
        elapsed = _measure(uuids[args.warm_up:], server, execute)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.cprofile)
        http = len(server.state.fetches) + len(server.state.invocations) - requests_before
        server.stop()
    n = args.runs
    print(f"{db_url.split(':')[0]}: {n} runs in one process, {elapsed / n * 1000:.2f} ms per run")
    print(f"  http requests {http / n:.2f}")
    for key in sorted(COUNTS):
        print(f"  {key} {COUNTS[key] / n:.2f}")
    for key, total in sorted(TIMES.items(), key=lambda kv: -kv[1]):
        print(f"  {key}: {total / n * 1000:.2f} ms")


if __name__ == "__main__":
    main()
