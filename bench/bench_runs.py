"""End-to-end runs/s (record, claim, fetch, match, one HTTP invoke, finish) against a bare Celery task
doing the same HTTP call, same worker settings, measured side by side in one run.

    .venv/bin/python bench/bench_runs.py [--runs 1000] [--concurrency 4] [--pool prefork]

Uses REDIS_URL (or an embedded Redis) and a fresh SQLite file unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from tests import processes  # noqa: E402
from tests.integration_server import IntegrationServer  # noqa: E402
from tests.services import redis_server  # noqa: E402


def _setup_env(tmp: Path, redis_url: str) -> None:
    """Point this process and the workers at the bench database and Redis."""
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'bench.db'}")
    os.environ.update(REDIS_URL=redis_url, SECRET_KEY="bench-secret", API_TOKEN="bench-token")
    from models import migrate

    migrate.upgrade(os.environ["DATABASE_URL"])


def _automations(n: int, server_url: str) -> list[str]:
    """n automations on one connection pointed at the loopback server; their UUIDs."""
    from models.db import session_scope
    from tests.factories import make_automation, make_connection, make_partner_function

    with session_scope() as db:
        conn = make_connection(db, api_domain=server_url, account_server=server_url)
        pf = make_partner_function(db, conn)
        autos = [make_automation(db, conn, pf, code=f"b{i}", name=f"Bench {i}",
                                 watermark_at=datetime(2020, 1, 1, tzinfo=UTC)) for i in range(n)]
        return [a.uuid for a in autos]


def _wait(done: callable, n: int, timeout_s: float) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout_s
    while done() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done()} of {n} done")
        time.sleep(0.01)


def bench_runs(uuids: list[str], server: IntegrationServer) -> float:
    """Runs/s: publish one run per automation, until every run is recorded succeeded."""
    from models.db import session_scope
    from models.run import Run
    from tasks.enqueue import enqueue_run

    def finished() -> int:
        with session_scope() as db:
            return int(db.scalar(select(func.count()).select_from(Run).where(Run.status == "succeeded")) or 0)

    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    start = time.perf_counter()
    for uuid in uuids:
        enqueue_run(uuid, slot)
    _wait(finished, len(uuids), 300)
    return len(uuids) / (time.perf_counter() - start)


def bench_bare(n: int, server: IntegrationServer, tag: str) -> float:
    """Tasks/s of the bare task doing the same POST."""
    from worker.celery_app import app

    url = f"{server.url}/partner-functions/bare/invoke"
    before = len(server.state.applied)
    start = time.perf_counter()
    for i in range(n):
        app.send_task("bench.bare_invoke", args=[url, f"{tag}-{i}"])
    _wait(lambda: len(server.state.applied) - before, n, 300)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        _setup_env(Path(tmp), redis_url)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        server = IntegrationServer().start()
        server.set_records("supplier", [{"id": "r1", "created_at": "2024-01-01T00:00:00+00:00",
                                         "updated_at": "2024-01-01T00:00:00+00:00", "Name": "Acme"}])
        uuids = _automations(args.runs, server.url)
        env = processes.celery_env(LOG_LEVEL="WARNING")
        worker = processes.start_worker(env, "bench-worker", args.concurrency, None, pool=args.pool,
                                        app="bench.bench_app")
        try:
            time.sleep(3)
            bench_bare(50, server, "warm-up")
            bare = bench_bare(args.runs, server, "bare")
            runs = bench_runs(uuids, server)
        finally:
            processes.stop(worker)
            server.stop()
    print(f"| workload | per second |\n|---|---|\n| bare task, one HTTP POST | {bare:,.0f} |")
    print(f"| run (record, claim, fetch, match, invoke, finish) | {runs:,.0f} |")
    print(f"| ratio | {runs / bare:.0%} |")
    print(f"({args.runs} each, {args.pool} pool, concurrency {args.concurrency}, "
          f"{os.environ['DATABASE_URL'].split(':')[0]})")


if __name__ == "__main__":
    main()
