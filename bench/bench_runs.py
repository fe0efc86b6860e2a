"""End-to-end runs/s (record, claim, fetch, match, one HTTP invoke, finish) against two bare Celery tasks,
same worker and app settings, measured side by side for each database: one doing the run's HTTP invoke
only (the issue's ceiling), one doing both HTTP calls a run makes (GET a page of records, POST them).

    .venv/bin/python bench/bench_runs.py [--runs 500] [--repeat 3] [--concurrency 4] [--pool prefork]
                                         [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

For each database (a fresh SQLite file, and a fresh PostgreSQL database beside --postgres or
TEST_DATABASE_URL when given) one worker is started; each repetition measures the bare task, then the
runs. Prints every measurement, then per database the medians (min-max) of both rates and of the ratio;
the raw output also goes to bench/results/runs.txt. Uses REDIS_URL (or the local / an embedded Redis).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from tests.support import processes  # noqa: E402
from tests.support.integration_server import IntegrationServer  # noqa: E402
from tests.support.services import fresh_database, redis_server  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "runs.txt"
RECORD = {"id": "r1", "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00",
          "Name": "Acme"}


@dataclass(frozen=True)
class Sample:
    """One repetition on one database: bare tasks/s and runs/s, measured one after the other, and the
    worker's CPU per task in each (less sensitive than rates to other load on a shared machine)."""

    db: str
    repeat: int
    bare: float
    runs: float
    bare_cpu_ms: float
    runs_cpu_ms: float
    both: float = float("nan")
    both_cpu_ms: float = float("nan")

    @property
    def ratio(self) -> float:
        """Runs/s as a share of the bare ceiling (one POST) of the same repetition."""
        return self.runs / self.bare

    @property
    def ratio_both(self) -> float:
        """Runs/s as a share of the two-call ceiling (GET + POST) of the same repetition."""
        return self.runs / self.both


def _point_at(database_url: str) -> None:
    """This process's settings, engine and Celery app use this database (and the session's Redis)."""
    from models import db as db_module
    from models.settings import get_settings

    os.environ["DATABASE_URL"] = database_url
    get_settings.cache_clear()
    db_module.clear_caches()


@contextmanager
def _database(tmp: Path, kind: str, postgres: str | None) -> Iterator[str]:
    """A fresh, migrated database of the kind ("sqlite" or "postgresql"), dropped afterwards."""
    from models import migrate

    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        migrate.upgrade(url)
        yield url
        return
    previous = os.environ.get("TEST_DATABASE_URL")
    os.environ["TEST_DATABASE_URL"] = postgres or ""
    try:
        with fresh_database(tmp) as url:
            migrate.upgrade(url)
            yield url
    finally:
        os.environ.pop("TEST_DATABASE_URL", None)
        if previous is not None:
            os.environ["TEST_DATABASE_URL"] = previous


def _automations(n: int, server_url: str, tag: str) -> list[str]:
    """n automations on one connection pointed at the loopback server; their UUIDs."""
    from models.db import session_scope
    from tests.support.factories import make_automation, make_connection, make_partner_function

    with session_scope() as db:
        conn = make_connection(db, api_domain=server_url, account_server=server_url)
        pf = make_partner_function(db, conn)
        autos = [make_automation(db, conn, pf, code=f"{tag}-{i}", name=f"Bench {tag} {i}",
                                 watermark_at=datetime(2020, 1, 1, tzinfo=UTC)) for i in range(n)]
        return [a.uuid for a in autos]


def worker_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the worker and its pool processes so far."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _wait(done: Callable[[], int], n: int, timeout_s: float, interval_s: float = 0.01) -> None:
    """Poll until `done()` reaches n."""
    deadline = time.monotonic() + timeout_s
    while done() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done()} of {n} done")
        time.sleep(interval_s)


def bench_runs(uuids: list[str], server: IntegrationServer, slot: datetime) -> float:
    """Runs/s: publish one run per automation, until every run is recorded succeeded."""
    from models.db import session_scope
    from models.run import Run
    from tasks.enqueue import enqueue_run

    def succeeded() -> int:
        with session_scope() as db:
            stmt = select(func.count()).select_from(Run).where(Run.status == "succeeded",
                                                               Run.scheduled_for == slot)
            return int(db.scalar(stmt) or 0)

    applied_before = len(server.state.applied)
    start = time.perf_counter()
    for uuid in uuids:
        enqueue_run(uuid, slot)
    # The invokes first (in memory, no load on the database), then the runs' outcomes.
    _wait(lambda: len(server.state.applied) - applied_before, len(uuids), 300)
    _wait(succeeded, len(uuids), 60)
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


def bench_both(n: int, server: IntegrationServer, tag: str) -> float:
    """Tasks/s of the bare task making a run's two calls: GET the records page, POST them."""
    from worker.celery_app import app

    fetch = f"{server.url}/objects/supplier"
    invoke = f"{server.url}/partner-functions/bare/invoke"
    before = len(server.state.applied)
    start = time.perf_counter()
    for i in range(n):
        app.send_task("bench.bare_fetch_invoke", args=[fetch, invoke, f"{tag}-{i}"])
    _wait(lambda: len(server.state.applied) - before, n, 300)
    return n / (time.perf_counter() - start)


def measure_database(kind: str, args: argparse.Namespace, tmp: Path, redis_url: str,
                     out: Callable[[str], None]) -> list[Sample]:
    """Every repetition on one database, with one worker started for it."""
    samples: list[Sample] = []
    with _database(tmp, kind, args.postgres) as url:
        _point_at(url)
        server = IntegrationServer().start()
        server.set_records("supplier", [RECORD])
        env = processes.celery_env(LOG_LEVEL="WARNING", DATABASE_URL=url, REDIS_URL=redis_url)
        worker = processes.start_worker(env, f"bench-{kind}", args.concurrency, None, pool=args.pool,
                                        app="bench.bench_app")
        try:
            time.sleep(3)
            bench_bare(50, server, f"{kind}-warm-up")
            base_slot = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
            for rep in range(1, args.repeat + 1):
                uuids = _automations(args.runs, server.url, f"{kind}{rep}")
                cpu0 = worker_cpu_s(worker.pid)
                bare = bench_bare(args.runs, server, f"{kind}-bare-{rep}")
                cpu1 = worker_cpu_s(worker.pid)
                runs = bench_runs(uuids, server, base_slot + timedelta(minutes=rep))
                cpu2 = worker_cpu_s(worker.pid)
                both = bench_both(args.runs, server, f"{kind}-both-{rep}")
                cpu3 = worker_cpu_s(worker.pid)
                per = 1000 / args.runs
                sample = Sample(kind, rep, bare, runs, (cpu1 - cpu0) * per, (cpu2 - cpu1) * per,
                                both, (cpu3 - cpu2) * per)
                samples.append(sample)
                out(json.dumps({"db": kind, "repeat": rep, "bare_per_s": round(bare, 1),
                                "both_per_s": round(both, 1), "runs_per_s": round(runs, 1),
                                "ratio": round(sample.ratio, 3), "ratio_both": round(sample.ratio_both, 3),
                                "worker_cpu_ms_per_bare": round(sample.bare_cpu_ms, 2),
                                "worker_cpu_ms_per_both": round(sample.both_cpu_ms, 2),
                                "worker_cpu_ms_per_run": round(sample.runs_cpu_ms, 2),
                                "load_avg_1m": round(os.getloadavg()[0], 2)}))
        finally:
            processes.stop(worker)
            server.stop()
            from models.db import get_engine

            get_engine(None).dispose()
    return samples


def summary(samples: list[Sample], args: argparse.Namespace) -> list[str]:
    """The table: per database, the medians with their spread (min-max) over the repetitions."""
    lines = ["| store | bare task, POST (/s) | bare task, GET + POST (/s) | run, one invoke (/s) "
             "| run / POST | run / GET + POST | worker CPU per POST / GET + POST / run (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind in dict.fromkeys(s.db for s in samples):
        mine = [s for s in samples if s.db == kind]
        lines.append(f"| {kind} | {_spread([s.bare for s in mine], '{:,.0f}')} | "
                     f"{_spread([s.both for s in mine], '{:,.0f}')} | "
                     f"{_spread([s.runs for s in mine], '{:,.0f}')} | "
                     f"{_spread([s.ratio * 100 for s in mine], '{:.0f}')} % | "
                     f"{_spread([s.ratio_both * 100 for s in mine], '{:.0f}')} % | "
                     f"{statistics.median(s.bare_cpu_ms for s in mine):.1f} / "
                     f"{statistics.median(s.both_cpu_ms for s in mine):.1f} / "
                     f"{statistics.median(s.runs_cpu_ms for s in mine):.1f} |")
    lines.append(f"({args.runs} each, median of {args.repeat} (min-max), {args.pool} pool, "
                 f"concurrency {args.concurrency})")
    return lines


def _spread(values: list[float], fmt: str) -> str:
    """`median (min-max)`."""
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL") or None,
                        help="a PostgreSQL URL; a fresh database is created beside it")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        os.environ.update(REDIS_URL=redis_url, SECRET_KEY="bench-secret", API_TOKEN="bench-token")
        from tests.conftest import point_celery_at

        point_celery_at(redis_url)
        for kind in kinds:
            samples += measure_database(kind, args, Path(tmp), redis_url, out)
    for line in summary(samples, args):
        out(line)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
