"""Partner limits (issue 12): budget use against a limiting partner, the cost of a permit, isolation.

    .venv/bin/python bench/bench_budget.py [--parts use,permit,runs,isolation] [--repeat 3]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--output bench/results/budget.txt]

Everything is measured side by side in one run (variants alternate within each repetition); the summary
gives medians (min-max) and ratios. Loopback only: a fresh PostgreSQL database beside --postgres per part,
a redis-server of the benchmark's own for the processes (beat_common.private_redis), the machine's Redis
(--redis, 127.0.0.1:6379) for the permit loop (its keys are the benchmark's own and deleted after).

- use: 50 automations of one XERO connection (each run: one page, three invoke batches: 200 calls), 10
  worker processes (2 workers × 5 prefork), a real beat (product RESUME_SWEEP_S / BUDGET_MAX_WAIT_S), a
  loopback partner enforcing Xero's limits (60 a minute, 5 at once, 5,000 a day; 429 + Retry-After and
  X-MinLimit-Remaining / X-DayLimit-Remaining), 200 ms per call. Variants: the budget with Xero's
  defaults; the same connection with `rate_limits` all null (the engine does not limit; a 429 still
  pauses the connection); the budget switched off (no budget at all: before issue 12, a 429's Retry-After
  is slept in the worker). Calls a minute that got through, 429s (by X-Rate-Limit-Problem), total time,
  records applied twice or never (by content, across Idempotency-Keys).
- permit: acquire + release (+ Xero's counts followed) in a loop against the machine's Redis (client CPU,
  wall, round trips, Redis's own time); the Redis commands one real call makes; the client CPU of one
  call through IntegrationClient (budget off / unlimited / a lease) and of one bare Redis round trip.
- runs: runs/s of bench_runs.py's set-up (one prefork worker, -c 4, SANDBOX connection, no limits at the
  partner) with the budget off, on with an unlimited connection, and on with SANDBOX's defaults; then
  the run task's body in this process (tasks.run.execute), CPU per run, the same three.
- isolation: drift (run start − slot) of a healthy connection's runs (60 automations on `1 minute`, one
  due every second, real runs, real beat, 2 workers × 4 prefork) alone, next to a XERO connection whose
  daily quota is spent (60 more automations, one due every second: their runs defer), and next to the
  same spent connection with the budget off (its runs sleep the Retry-After inside the workers).

The worker processes run `celery -A bench.bench_budget` (BENCH_BUDGET_WORKER=1): the product app, with
the budget switched off for connections whose provider_name is NO_BUDGET (an Endpoint with scope None,
as tools and tests use it). Nothing else differs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

NO_BUDGET = "Bench without budget"  # provider_name of connections whose calls take no permit


def switch_off_budget_for_marked_connections() -> None:
    """Endpoint.of gives scope None (no budget) for connections named NO_BUDGET; others are untouched."""
    from tasks.transport import Endpoint

    original = Endpoint.of.__func__  # type: ignore[attr-defined]

    def of(cls: type[Endpoint], conn: Any) -> Endpoint:
        endpoint = original(cls, conn)
        return replace(endpoint, scope=None) if conn.provider_name == NO_BUDGET else endpoint

    Endpoint.of = classmethod(of)  # type: ignore[method-assign, assignment]


if os.environ.get("BENCH_BUDGET_WORKER") == "1":  # `celery -A bench.bench_budget worker`
    switch_off_budget_for_marked_connections()
    from worker.celery_app import app  # noqa: F401,E402  (the app Celery looks for)

RESULTS = ROOT / "bench" / "results" / "budget.txt"


def count_refusals() -> None:
    """Count the loopback partner's 429s by their X-Rate-Limit-Problem (day, concurrent, minute), per
    partner, in REFUSALS."""
    from tests.support.integration_server import _Handler

    refusal = _Handler._refusal
    if getattr(refusal, "counted", False):
        return

    def counted_refusal(self: Any) -> dict[str, str] | None:
        headers = refusal(self)
        if headers is not None:
            REFUSALS.setdefault(id(self.state), Counter())[headers.get("X-Rate-Limit-Problem", "?")] += 1
        return headers

    counted_refusal.counted = True  # type: ignore[attr-defined]
    _Handler._refusal = counted_refusal  # type: ignore[method-assign]


#: 429s by the partner's X-Rate-Limit-Problem, per loopback partner (keyed by id of its state).
REFUSALS: dict[int, Counter[str]] = {}
T0 = datetime(2025, 1, 1, tzinfo=UTC)
FINAL = ("succeeded", "failed", "skipped", "below_threshold", "missed")


def _records(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "created_at": (T0 + timedelta(minutes=i)).isoformat(),
             "updated_at": (T0 + timedelta(minutes=i)).isoformat(), "Name": f"Acme {i}"} for i in range(n)]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile q (0-100); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: list[float], fmt: str = "{:,.1f}") -> str:
    """`median (min-max)` (one value alone when there is one)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


# --- set-up shared by the parts ----------------------------------------------------------------------


@contextmanager
def database(tmp: Path, postgres: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database beside `postgres`; this process's settings point at it."""
    from models import db as db_module
    from models import migrate
    from models.settings import get_settings
    from tests.support.services import fresh_database

    previous = os.environ.get("TEST_DATABASE_URL")
    os.environ["TEST_DATABASE_URL"] = postgres
    try:
        with fresh_database(tmp) as url:
            migrate.upgrade(url)
            os.environ["DATABASE_URL"] = url
            get_settings.cache_clear()
            db_module.clear_caches()
            try:
                yield url
            finally:
                db_module.get_engine().dispose()
    finally:
        os.environ.pop("TEST_DATABASE_URL", None)
        if previous is not None:
            os.environ["TEST_DATABASE_URL"] = previous


def process_env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of beat and workers: our database, our Redis, the same SECRET_KEY as this process."""
    env = dict(os.environ)
    env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               SECRET_KEY=os.environ["SECRET_KEY"], API_TOKEN=os.environ["API_TOKEN"],
               BENCH_BUDGET_WORKER="1", LOG_LEVEL="WARNING")
    env.update(extra)
    return env


def start_workers(env: dict[str, str], log_dir: Path, n: int, concurrency: int, tag: str) -> list[Any]:
    """n prefork workers of the bench app, each ready before this returns."""
    from tests.support import processes

    workers = [processes.start_worker(env, f"{tag}{i}", concurrency, log_dir, app="bench.bench_budget")
               for i in range(n)]
    for worker in workers:
        if not processes.wait_for_log(worker, " ready.", 60):
            raise RuntimeError(f"worker not ready:\n{processes.log_of(worker)[-3000:]}")
    return workers


def start_beat(env: dict[str, str], log_dir: Path, tag: str) -> Any:
    """A real beat (the product's, `-A worker`), ready before this returns."""
    from tests.support import processes

    beat = processes.start_beat({**env, "LOG_LEVEL": "INFO"}, tag, log_dir)
    if not processes.wait_for_log(beat, "database scheduler ready", 60):
        raise RuntimeError(f"beat not ready:\n{processes.log_of(beat)[-3000:]}")
    return beat


def stop_all(procs: list[Any]) -> None:
    """Stop the processes this benchmark started (by pid, their own process groups)."""
    from tests.support import processes

    for proc in procs:
        processes.stop(proc, timeout_s=10)


def connection(provider: str, server_url: str, tenant: str, rate_limits: dict[str, Any] | None = None,
               budget: bool = True) -> Any:
    """A committed connection pointed at the loopback partner (NO_BUDGET's provider_name when budget off)."""
    from models.db import session_scope
    from tests.support.factories import make_connection

    with session_scope() as db:
        conn = make_connection(db, provider=provider, provider_name=provider.title() if budget else NO_BUDGET,
                               api_domain=server_url, account_server=server_url, remote_instance_id=tenant,
                               rate_limits=rate_limits)
        db.expunge(conn)
        return conn


def automations(conn: Any, n: int, tag: str,
                per_index: Callable[[int], dict[str, Any]] | None = None) -> list[str]:
    """n automations of the connection (one partner function); none due unless per_index(i) says when."""
    from models.db import session_scope
    from models.tables import Connection
    from tests.support.factories import make_automation, make_partner_function

    with session_scope() as db:
        c = db.get(Connection, conn.id)
        assert c is not None
        pf = make_partner_function(db, c)
        fields: dict[str, Any] = {"next_run_at": datetime.now(UTC) + timedelta(days=2)}
        out = []
        for i in range(n):
            extra = {**fields, **(per_index(i) if per_index else {})}
            auto = make_automation(db, c, pf, code=f"{tag}-{i}", name=f"{tag} {i}",
                                   watermark_at=T0 - timedelta(days=1), **extra)
            out.append(auto.uuid)
        return out


def runs_of(uuids: list[str]) -> list[Any]:
    """The runs of these automations as stored now (detached rows)."""
    from sqlalchemy import select

    from models.db import session_scope
    from models.tables import Automation, Run

    with session_scope() as db:
        rows = db.execute(select(Run, Automation.uuid).join(Automation, Automation.id == Run.automation_id)
                          .where(Automation.uuid.in_(uuids))).all()
        for run, _ in rows:
            db.expunge(run)
        return [run for run, _ in rows]


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


# --- part 1: budget use ---------------------------------------------------------------------------------

USE_VARIANTS: dict[str, dict[str, Any]] = {
    "budget": {"rate_limits": None, "budget": True},
    "no limits": {"rate_limits": {"per_minute": None, "per_day": None, "concurrent": None}, "budget": True},
    "budget off": {"rate_limits": None, "budget": False},
    # diagnostic (not in the default run): the partner sends no X-MinLimit-Remaining / X-DayLimit-Remaining
    "budget (partner sends no remaining counts)": {"rate_limits": None, "budget": True,
                                                   "send_remaining": False},
}
DEFAULT_USE_VARIANTS = "budget,no limits,budget off"


def through_per_minute(times: list[float]) -> tuple[float, int]:
    """(calls that got through per full minute from the first call, most calls in any 60-s window)."""
    if not times:
        return 0.0, 0
    times = sorted(times)
    span = times[-1] - times[0]
    minutes = max(1, math.floor(span / 60))
    first = sum(1 for t in times if t < times[0] + 60 * minutes) / minutes
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - 60:
            lo += 1
        most = max(most, hi - lo + 1)
    return first, most


def measure_use(variant: str, rep: int, args: argparse.Namespace,
                out: Callable[[str], None]) -> dict[str, Any]:
    """One load of 50 runs on a fresh tenant (its own loopback partner), until every run is final."""
    from tasks.enqueue import enqueue_run
    from tests.support.integration_server import IntegrationServer, PartnerLimits

    server = IntegrationServer().start()
    records = _records(args.records)
    server.set_records("supplier", records)
    server.state.fetch_delay_s = server.state.invoke_delay_s = args.latency_s
    spec = USE_VARIANTS[variant]
    server.state.limits = PartnerLimits(per_minute=60, concurrent=5, per_day=5000,
                                        send_remaining=spec.get("send_remaining", True))
    conn = connection("XERO", server.url, f"tenant-{variant}-{rep}", spec["rate_limits"], spec["budget"])
    uuids = automations(conn, args.automations, f"use-{variant.replace(' ', '-')}-{rep}")
    the_slot = datetime.now(UTC).replace(microsecond=0)
    began_wall, began = time.time(), time.monotonic()
    for auto in uuids:
        enqueue_run(auto, the_slot)
    finished = wait_until(lambda: sum(r.status in FINAL for r in runs_of(uuids)) == len(uuids),
                          args.use_timeout_s, 1.0)
    runs = runs_of(uuids)
    ends = [r.finished_at.timestamp() for r in runs if r.finished_at is not None]
    total_s = (max(ends) - began_wall) if finished and ends else time.monotonic() - began
    with server.state.lock:
        times = list(server.state.calls)
        applied = list(server.state.applied.values())
        calls, throttled, in_flight = (server.state.calls_total, server.state.throttled_total,
                                       server.state.max_in_flight)
    server.stop()
    content = Counter((str(inv.body["automation"]["uuid"]), str(r["id"])) for inv in applied
                      for r in inv.body.get("records", []))
    expected = Counter((u, str(r["id"])) for u in uuids for r in records)
    per_minute, busiest = through_per_minute(times)
    statuses = Counter(r.status for r in runs)
    row = {"part": "use", "variant": variant, "repeat": rep, "runs": len(uuids), "finished": finished,
           "statuses": dict(statuses), "total_s": round(total_s, 1), "calls": calls,
           "calls_planned": len(uuids) * (1 + math.ceil(len(records) / args.batch)),
           "through": len(times), "throttled": throttled,
           "throttled_pct": round(100 * throttled / max(1, calls), 2),
           "per_minute": round(per_minute, 1), "per_minute_pct": round(100 * per_minute / 60, 1),
           "busiest_minute": busiest, "max_in_flight": in_flight,
           "deferred_runs": sum(r.resume_at is not None for r in runs),
           "budget_wait_s": round(sum(r.budget_wait_ms for r in runs) / 1000, 1),
           "exactly_once": content == expected,
           "applied_twice": sum(n - 1 for n in content.values() if n > 1),
           "not_applied": sum((expected - content).values()),
           "throttled_by_problem": dict(REFUSALS.get(id(server.state), Counter())),
           "load_avg_1m": round(os.getloadavg()[0], 2),
           "reasons": dict(Counter(f"{r.status}: {r.reason} | {(r.error or '')[:160]}"
                                   for r in runs if r.status != "succeeded"))}
    out(json.dumps(row))
    return row


def part_use(args: argparse.Namespace, tmp: Path, redis_url: str, out: Callable[[str], None]) -> list[dict]:
    rows: list[dict[str, Any]] = []
    variants = [v for v in args.use_variants.split(",") if v in USE_VARIANTS]
    with database(tmp, args.postgres) as url:
        log_dir = tmp / "use-logs"
        log_dir.mkdir(exist_ok=True)
        env = process_env(url, redis_url, INVOKE_BATCH_SIZE=str(args.batch))
        procs: list[Any] = []
        try:
            procs += start_workers(env, log_dir, 2, 5, "use")
            procs.append(start_beat(env, log_dir, "use-beat"))
            for rep in range(1, args.repeat + 1):
                order = variants if rep % 2 else list(reversed(variants))
                for variant in order:
                    rows.append(measure_use(variant, rep, args, out))
        finally:
            stop_all(procs)
    return rows


# --- part 2: cost ---------------------------------------------------------------------------------------


def permit_loop(redis_url: str, n: int, limits: Any, follow: dict[str, str] | None = None) -> dict[str, Any]:
    """acquire + release (and `follow(headers)` when given, as a Xero call does after its answer) n times
    on one connection's budget: client CPU and wall per call, round trips (commands sent), Redis's own
    microseconds (INFO commandstats: the machine's other clients may add a little).

    With a per-day limit the day log starts full (5,000 entries of yesterday, the worst case for the
    scripts that read it) and stays so; with a per-minute limit another client empties the minute log
    every 50 calls (1 command per 50 calls, not counted), so the minute limit never binds the loop."""
    import redis

    from tasks.budget import Budget, Scope

    client, side = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    budget = Budget(Scope(f"bench-{uuid.uuid4()}", "XERO", limits, "bench-app", "bench-tenant"), client)
    pause, minute, day, _leases, app = budget.keys
    side.delete(app)
    if limits.per_day:
        yesterday = int((time.time() - 25 * 3600) * 1000)
        side.rpush(day, *([yesterday] * limits.per_day))
    step = [0]

    def call() -> None:
        budget.release(budget.acquire("call"))
        if follow:
            budget.follow(follow)
        step[0] += 1
        if limits.per_minute and step[0] % 50 == 0:
            side.delete(minute)

    for _ in range(200):  # warm: the connection, the script in Redis's cache
        call()
    commands: Counter[str] = Counter()
    original = client.execute_command

    def counted(*a: Any, **k: Any) -> Any:
        commands[str(a[0])] += 1
        return original(*a, **k)

    stats0 = side.info("commandstats")
    client.execute_command = counted  # type: ignore[method-assign]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    client.execute_command = original  # type: ignore[method-assign]
    stats1 = side.info("commandstats")

    def usec(cmd: str) -> float:
        a, b = stats0.get(f"cmdstat_{cmd}", {}), stats1.get(f"cmdstat_{cmd}", {})
        return float(b.get("usec", 0) - a.get("usec", 0))

    server_us = sum(usec(c) for c in ("eval", "evalsha", "zrem")) / n
    side.delete(*budget.keys)
    client.close()
    side.close()
    return {"client_cpu_ms": 1000 * cpu / n, "wall_ms": 1000 * wall / n,
            "round_trips": sum(commands.values()) / n, "commands": {k: v / n for k, v in commands.items()},
            "redis_us": server_us}


def commands_per_call(redis_url: str, calls: int = 50) -> dict[str, float]:
    """Redis commands one real call makes through IntegrationClient (permit, lease back, and Xero's
    X-MinLimit-Remaining / X-DayLimit-Remaining followed), against a loopback partner that sends them."""
    import redis

    from models.limits import limits_for
    from tasks import transport as ic
    from tasks.budget import Budget, Scope
    from tasks.integration_client import IntegrationClient
    from tests.support.integration_server import IntegrationServer, PartnerLimits

    server = IntegrationServer().start()
    server.set_records("supplier", _records(1))
    server.state.limits = PartnerLimits(per_minute=10_000, concurrent=50, per_day=100_000)
    client = redis.Redis.from_url(redis_url)
    scope = Scope(f"bench-{uuid.uuid4()}", "XERO", replace(limits_for("XERO", None), per_minute=10_000,
                                                             per_day=100_000), "bench-app", "bench-tenant")
    endpoint = ic.Endpoint(scope.connection_uuid, server.url, server.url, "Bearer", dict(ic.DEFAULT_PATHS),
                           scope)
    api = IntegrationClient(endpoint, "token", "Bearer", False)
    api.budget = Budget(scope, client)
    commands: Counter[str] = Counter()
    original = client.execute_command

    def counted(*a: Any, **k: Any) -> Any:
        commands[str(a[0])] += 1
        return original(*a, **k)

    api.get_json("objects_path", "warm", {"limit": 1}, applies_to="supplier")
    client.execute_command = counted  # type: ignore[method-assign]
    for i in range(calls):
        api.get_json("objects_path", f"page {i}", {"limit": 1}, applies_to="supplier")
    client.execute_command = original  # type: ignore[method-assign]
    for key in scope.redis_keys():
        client.delete(key)
    client.close()
    server.stop()
    return {k: v / calls for k, v in commands.items()}


RUNS_VARIANTS: dict[str, dict[str, Any]] = {
    "budget off": {"rate_limits": None, "budget": False},
    "unlimited connection": {"rate_limits": {"per_minute": None, "per_day": None, "concurrent": None},
                             "budget": True},
    "SANDBOX defaults (10 at once)": {"rate_limits": None, "budget": True},
}


def part_permit(args: argparse.Namespace, out: Callable[[str], None]) -> list[dict]:
    """The permit loop against the machine's Redis, and the commands of one real call."""
    from models.limits import Limits, limits_for

    rows: list[dict[str, Any]] = []
    xero = limits_for("XERO", None)  # 60/min, 5,000/day (its log full), 5 at once, 10,000/min per app
    counts = {"X-MinLimit-Remaining": "59", "X-DayLimit-Remaining": "4999"}  # no more than we counted
    shapes = {"permit, unlimited connection (acquire)": (Limits(None, None, None), None),
              "permit, Xero's limits (acquire + lease back)": (xero, None),
              "a Xero call's budget work (acquire + lease back + its 2 counts followed)": (xero, counts)}
    n = min(args.permits, 4000)  # the day log's yesterday entries outnumber the loop's own calls
    for rep in range(1, args.repeat + 1):
        for shape, (limits, follow) in shapes.items():
            row = {"part": "permit", "shape": shape, "repeat": rep, "n": n,
                   **permit_loop(args.redis, n, limits, follow)}
            out(json.dumps(row))
            rows.append(row)
    row = {"part": "per call", "commands": commands_per_call(args.redis)}
    out(json.dumps(row))
    rows.append(row)
    rows += client_call_cpu(args, out)
    return rows


def client_call_cpu(args: argparse.Namespace, out: Callable[[str], None]) -> list[dict[str, Any]]:
    """Client CPU (this thread) of one GET through IntegrationClient against the loopback partner, the
    budget off / unlimited / SANDBOX's defaults, alternating; and of one bare Redis round trip."""
    import redis

    from models.limits import Limits, limits_for
    from tasks import transport as ic
    from tasks.budget import _ACQUIRE, Budget, Scope
    from tasks.integration_client import IntegrationClient
    from tests.support.integration_server import IntegrationServer

    server = IntegrationServer().start()
    server.set_records("supplier", _records(1))
    client = redis.Redis.from_url(args.redis)
    variants = {"GET, budget off": None, "GET, unlimited connection": Limits(None, None, None),
                "GET, SANDBOX defaults (a lease)": limits_for("SANDBOX", None)}
    pause_key = f"aw:bench-budget:{uuid.uuid4()}"
    script = client.register_script(_ACQUIRE)
    keys5 = [f"{pause_key}:{i}" for i in range(5)]
    unlimited = (0, 0, 0, 0, "-", 1)
    trips: dict[str, Callable[[], Any]] = {
        "Redis round trip: GET": lambda: client.get(pause_key),
        "Redis round trip: EVALSHA of the permit script": lambda: script(keys=keys5, args=unlimited),
        "Redis round trip: EVAL of the permit script": lambda: client.eval(_ACQUIRE, 5, *keys5, *unlimited),
    }
    rows: list[dict[str, Any]] = []
    for rep in range(1, args.runs_repeat + 1):
        for name, limits in variants.items():
            scope = None if limits is None else Scope(f"bench-{uuid.uuid4()}", "SANDBOX", limits)
            endpoint = ic.Endpoint(f"bench-{uuid.uuid4()}", server.url, server.url, "Bearer",
                                   dict(ic.DEFAULT_PATHS), scope)
            api = IntegrationClient(endpoint, "token", "Bearer", False)
            if api.budget is not None:
                api.budget = Budget(api.budget.scope, client)
            api.get_json("objects_path", "warm", {"limit": 1}, applies_to="supplier")
            cpu0 = time.thread_time()
            for _ in range(1000):
                api.get_json("objects_path", "page", {"limit": 1}, applies_to="supplier")
            rows.append({"part": "client call", "what": name, "repeat": rep,
                         "cpu_ms": round(time.thread_time() - cpu0, 4)})  # seconds per 1,000 = ms per call
            out(json.dumps(rows[-1]))
        for name, trip in trips.items():
            trip()
            cpu0 = time.thread_time()
            for _ in range(5000):
                trip()
            rows.append({"part": "client call", "what": name, "repeat": rep,
                         "cpu_ms": round((time.thread_time() - cpu0) / 5, 4)})
            out(json.dumps(rows[-1]))
    client.delete(*keys5, pause_key)
    client.close()
    server.stop()
    return rows


def part_runs(args: argparse.Namespace, tmp: Path, redis_url: str, out: Callable[[str], None]) -> list[dict]:
    """Runs/s of bench_runs.py's set-up, the budget off / on (unlimited) / on (SANDBOX defaults)."""
    from bench_runs import bench_runs, worker_cpu_s

    from tests.support.integration_server import IntegrationServer

    rows: list[dict[str, Any]] = []
    with database(tmp, args.postgres) as url:
        log_dir = tmp / "cost-logs"
        log_dir.mkdir(exist_ok=True)
        server = IntegrationServer().start()
        server.set_records("supplier", _records(1))
        env = process_env(url, redis_url)
        procs: list[Any] = []
        try:
            procs += start_workers(env, log_dir, 1, 4, "cost")
            worker = procs[0]
            conns = {v: connection("SANDBOX", server.url, f"t-{i}", s["rate_limits"], s["budget"])
                     for i, (v, s) in enumerate(RUNS_VARIANTS.items())}
            base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
            for variant, conn in conns.items():  # warm-up: every code path once
                bench_runs(automations(conn, 50, f"warm-{variant[:6]}"), server, base)
            for rep in range(1, args.runs_repeat + 1):
                order = list(RUNS_VARIANTS) if rep % 2 else list(reversed(RUNS_VARIANTS))
                for k, variant in enumerate(order):
                    uuids = automations(conns[variant], args.runs, f"runs-{rep}-{k}")
                    cpu0 = worker_cpu_s(worker.pid)
                    rate = bench_runs(uuids, server, base + timedelta(minutes=rep * 10 + k))
                    cpu = (worker_cpu_s(worker.pid) - cpu0) * 1000 / args.runs
                    row = {"part": "runs", "variant": variant, "repeat": rep, "runs_per_s": round(rate, 1),
                           "worker_cpu_ms_per_run": round(cpu, 2),
                           "load_avg_1m": round(os.getloadavg()[0], 2)}
                    out(json.dumps(row))
                    rows.append(row)
        finally:
            stop_all(procs)
        try:
            rows += task_body_cpu(conns, server, args, out)
        finally:
            server.stop()
    return rows


def task_body_cpu(conns: dict[str, Any], server: Any, args: argparse.Namespace,
                  out: Callable[[str], None]) -> list[dict[str, Any]]:
    """CPU of the run task's body in this process (tasks.run.execute, no Celery), per run and variant,
    variants alternating: less sensitive to other load than a worker's runs/s. Endpoint.of is patched
    here as in the workers."""
    from tasks.run import execute

    switch_off_budget_for_marked_connections()
    rows: list[dict[str, Any]] = []
    slot = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    for rep in range(1, args.runs_repeat + 1):
        order = list(conns) if rep % 2 else list(reversed(conns))
        for k, variant in enumerate(order):
            uuids = automations(conns[variant], args.inprocess_runs + 10, f"ip-{rep}-{k}")
            for auto in uuids[:10]:  # this automation set's first statements and connections
                execute(auto, (slot - timedelta(hours=1)).isoformat())
            cpu0 = time.thread_time()
            for auto in uuids[10:]:
                execute(auto, slot.isoformat())
            cpu = (time.thread_time() - cpu0) * 1000 / args.inprocess_runs
            row = {"part": "task body", "variant": variant, "repeat": rep, "cpu_ms_per_run": round(cpu, 3)}
            out(json.dumps(row))
            rows.append(row)
    return rows


# --- part 3: isolation ----------------------------------------------------------------------------------

ISOLATION_VARIANTS = ("healthy alone", "next to a spent quota", "next to a spent quota, budget off")


def measure_isolation(variant: str, rep: int, args: argparse.Namespace, tmp: Path, redis_url: str,
                      out: Callable[[str], None]) -> dict[str, Any]:
    """A fresh database; the healthy connection's 60 automations due one a second (and the spent one's
    60, due at the half seconds), real beat and workers; drift of the healthy runs in the window."""
    import redis

    from tests.support.integration_server import IntegrationServer, PartnerLimits

    redis.Redis.from_url(redis_url).flushdb()
    healthy_server, spent_server = IntegrationServer().start(), IntegrationServer().start()
    healthy_server.set_records("supplier", _records(1))
    spent_server.set_records("supplier", _records(1))
    healthy_server.state.fetch_delay_s = healthy_server.state.invoke_delay_s = 0.05
    spent_server.state.limits = PartnerLimits(per_day=0, day_retry_after_s=10800)
    procs: list[Any] = []
    log_dir = tmp / f"iso-{rep}-{variant.replace(' ', '-').replace(',', '')}"
    log_dir.mkdir()
    try:
        with database(tmp, args.postgres) as url:
            env = process_env(url, redis_url)
            procs += start_workers(env, log_dir, 2, 4, "iso")
            t0 = datetime.fromtimestamp(math.ceil(time.time()) + 8, UTC)
            healthy = connection("SANDBOX", healthy_server.url, "tenant-healthy")
            schedule = {"check_on": "1 minute"}
            h_uuids = automations(healthy, 60, "healthy", per_index=lambda i: {
                **schedule, "custom_time": f"00:00:{(t0.second + i) % 60:02d}",
                "next_run_at": t0 + timedelta(seconds=i)})
            s_uuids: list[str] = []
            if variant != "healthy alone":
                spent = connection("XERO", spent_server.url, "tenant-spent", budget=variant.endswith("quota"))
                s_uuids = automations(spent, 60, "spent", per_index=lambda i: {
                    **schedule, "custom_time": f"00:00:{(t0.second + i) % 60:02d}",
                    "next_run_at": t0 + timedelta(seconds=i)})
            procs.append(start_beat(env, log_dir, "iso-beat"))
            end = t0 + timedelta(seconds=args.isolation_s)
            wait_until(lambda: datetime.now(UTC) >= end + timedelta(seconds=5), args.isolation_s + 60, 0.5)
            h_runs, s_runs = runs_of(h_uuids), runs_of(s_uuids)
    finally:
        stop_all(procs)
        healthy_server.stop()
        spent_server.stop()
    lo, hi = t0 + timedelta(seconds=args.warm_s), end
    window = [r for r in h_runs if lo <= r.scheduled_for < hi]
    drift = [(r.started_at - r.scheduled_for).total_seconds() for r in window if r.started_at is not None]
    due = sum(1 for i in range(60) for k in range(int(args.isolation_s // 60) + 2)
              if lo <= t0 + timedelta(seconds=i, minutes=k) < hi)  # each automation's slots in the window
    row = {"part": "isolation", "variant": variant, "repeat": rep, "due": due, "started": len(drift),
           "drift_p50_ms": round(1000 * pct(drift, 50), 1), "drift_p99_ms": round(1000 * pct(drift, 99), 1),
           "drift_max_ms": round(1000 * max(drift, default=float("nan")), 1),
           "healthy_statuses": dict(Counter(r.status for r in window)),
           "spent_statuses": dict(Counter(r.status for r in s_runs)),
           "spent_partner_calls": spent_server.state.calls_total,
           "load_avg_1m": round(os.getloadavg()[0], 2)}
    out(json.dumps(row))
    return row


def part_isolation(args: argparse.Namespace, tmp: Path, redis_url: str,
                   out: Callable[[str], None]) -> list[dict]:
    rows = []
    for rep in range(1, args.isolation_repeat + 1):
        order = ISOLATION_VARIANTS if rep % 2 else tuple(reversed(ISOLATION_VARIANTS))
        for variant in order:
            rows.append(measure_isolation(variant, rep, args, tmp, redis_url, out))
    return rows


# --- summary --------------------------------------------------------------------------------------------


def median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def _not_applied(rows: list[dict[str, Any]]) -> str:
    """Records of the load the partner never applied (a failed run's wait for its next slot), summed."""
    if all("not_applied" in r for r in rows):
        return str(sum(r["not_applied"] for r in rows))
    return "0" if all(r["exactly_once"] for r in rows) else "some"


def summary_use(use: list[dict[str, Any]]) -> list[str]:
    """The budget-use table: per variant, medians (min-max) over the repetitions; time ratios."""
    runs, calls = use[0]["runs"], use[0]["calls_planned"]
    lines = ["", f"Budget use: {runs} runs ({calls} calls) of one XERO connection, 10 worker processes, "
             "partner enforcing 60/min and 5 at once",
             "| variant | calls a minute through (% of 60) | busiest 60 s | 429s (% of calls) "
             "| max in flight | total time (s) | runs deferred | runs succeeded "
             "| records applied twice / not applied |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for variant in dict.fromkeys(r["variant"] for r in use):
        g = [r for r in use if r["variant"] == variant]
        lines.append(
            f"| {variant} | {spread([r['per_minute'] for r in g])} "
            f"({spread([r['per_minute_pct'] for r in g], '{:.0f}')} %) | "
            f"{spread([r['busiest_minute'] for r in g], '{:.0f}')} | "
            f"{spread([r['throttled'] for r in g], '{:.0f}')} "
            f"({spread([r['throttled_pct'] for r in g])} %) | "
            f"{spread([r['max_in_flight'] for r in g], '{:.0f}')} | {spread([r['total_s'] for r in g])} | "
            f"{spread([r['deferred_runs'] for r in g], '{:.0f}')} | "
            f"{'/'.join(str(r['statuses'].get('succeeded', 0)) for r in g)} of {runs} | "
            f"{sum(r.get('applied_twice', 0) for r in g)} / {_not_applied(g)} |")
    base = [r for r in use if r["variant"] == "budget"]
    for variant in dict.fromkeys(r["variant"] for r in use):
        other = [r for r in use if r["variant"] == variant]
        if variant != "budget" and base:
            lines.append(f"median total time, {variant} / budget: "
                         f"{median(other, 'total_s') / median(base, 'total_s'):.2f}×")
    return lines


def summary_cost(permits: list[dict[str, Any]], per_call: list[dict[str, Any]],
                 runs: list[dict[str, Any]]) -> list[str]:
    """The permit table, the commands of one call, the runs/s table with ratios to budget off."""
    lines: list[str] = []
    if permits:
        lines += ["", "Cost per permit, machine's Redis (client CPU and wall of this process, per call)",
                  "| what | round trips | client CPU (ms) | wall (ms) | Redis's own time (µs) |",
                  "|---|---:|---:|---:|---:|"]
        for shape in dict.fromkeys(r["shape"] for r in permits):
            g = [r for r in permits if r["shape"] == shape]
            lines.append(f"| {shape} | {spread([r['round_trips'] for r in g], '{:.2f}')} | "
                         f"{spread([r['client_cpu_ms'] for r in g], '{:.3f}')} | "
                         f"{spread([r['wall_ms'] for r in g], '{:.3f}')} | "
                         f"{spread([r['redis_us'] for r in g], '{:.1f}')} |")
    for r in per_call:
        lines.append(f"Redis commands per call through IntegrationClient, Xero's counts followed: "
                     f"{sum(r['commands'].values()):.2f} ({r['commands']})")
    if runs:
        lines += ["", "Runs/s, bench_runs.py's set-up (1 prefork worker -c 4, PostgreSQL, 1 record a run)",
                  "| budget | runs/s | share of budget off (same repetition) | worker CPU per run (ms) |",
                  "|---|---:|---:|---:|"]
        off = {r["repeat"]: r["runs_per_s"] for r in runs if r["variant"] == "budget off"}
        for variant in dict.fromkeys(r["variant"] for r in runs):
            g = [r for r in runs if r["variant"] == variant]
            ratios = [100 * r["runs_per_s"] / off[r["repeat"]] for r in g if r["repeat"] in off]
            cpu = spread([r["worker_cpu_ms_per_run"] for r in g], "{:.2f}")
            lines.append(f"| {variant} | {spread([r['runs_per_s'] for r in g], '{:,.0f}')} | "
                         f"{spread(ratios, '{:.0f}')} % | {cpu} |")
    return lines


def summary_body(body: list[dict[str, Any]]) -> list[str]:
    """The in-process task-body CPU per run, with the share of budget off's (same repetition)."""
    if not body:
        return []
    lines = ["", "Task-body CPU per run in process (tasks.run.execute, no Celery; SANDBOX, 1 record: GET + "
             "POST)", "| budget | CPU per run (ms) | more than budget off, same repetition (ms) "
             "| share of budget off |",
             "|---|---:|---:|---:|"]
    off = {r["repeat"]: r["cpu_ms_per_run"] for r in body if r["variant"] == "budget off"}
    for variant in dict.fromkeys(r["variant"] for r in body):
        g = [r for r in body if r["variant"] == variant]
        deltas = [r["cpu_ms_per_run"] - off[r["repeat"]] for r in g if r["repeat"] in off]
        ratios = [100 * r["cpu_ms_per_run"] / off[r["repeat"]] for r in g if r["repeat"] in off]
        lines.append(f"| {variant} | {spread([r['cpu_ms_per_run'] for r in g], '{:.2f}')} | "
                     f"{spread(deltas, '{:+.2f}')} | {spread(ratios, '{:.0f}')} % |")
    return lines


def summary_calls(calls: list[dict[str, Any]]) -> list[str]:
    """Client CPU of one call through IntegrationClient and of one Redis round trip."""
    if not calls:
        return []
    lines = ["", "Client CPU per call (this thread; 1,000 GETs through IntegrationClient, 5,000 Redis round "
             "trips)",
             "| what | CPU per call (ms) |", "|---|---:|"]
    for what in dict.fromkeys(r["what"] for r in calls):
        lines.append(f"| {what} | {spread([r['cpu_ms'] for r in calls if r['what'] == what], '{:.3f}')} |")
    return lines


def summary_isolation(iso: list[dict[str, Any]]) -> list[str]:
    """The drift table of the healthy connection's runs, per variant."""
    lines = ["", "Isolation: drift (start - slot) of the healthy connection's runs (one due every second)",
             "| variant | started / due | drift p50 (ms) | drift p99 (ms) | drift max (ms) | spent runs |",
             "|---|---:|---:|---:|---:|---|"]
    for variant in dict.fromkeys(r["variant"] for r in iso):
        g = [r for r in iso if r["variant"] == variant]
        lines.append(f"| {variant} | {sum(r['started'] for r in g)} / {sum(r['due'] for r in g)} | "
                     f"{spread([r['drift_p50_ms'] for r in g], '{:,.0f}')} | "
                     f"{spread([r['drift_p99_ms'] for r in g], '{:,.0f}')} | "
                     f"{spread([r['drift_max_ms'] for r in g], '{:,.0f}')} | "
                     f"{'; '.join(json.dumps(r['spent_statuses']) for r in g)} |")
    return lines


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Every part's table."""
    by_part: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_part.setdefault(row["part"], []).append(row)
    lines: list[str] = []
    if by_part.get("use"):
        lines += summary_use(by_part["use"])
    lines += summary_cost(by_part.get("permit", []), by_part.get("per call", []), by_part.get("runs", []))
    lines += summary_body(by_part.get("task body", []))
    lines += summary_calls(by_part.get("client call", []))
    if by_part.get("isolation"):
        lines += summary_isolation(by_part["isolation"])
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="use,permit,runs,isolation")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL")
                        or "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0",
                        help="the machine's Redis (the permit loop)")
    parser.add_argument("--automations", type=int, default=50)
    parser.add_argument("--records", type=int, default=6, help="records per run (INVOKE_BATCH_SIZE --batch)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--latency-s", type=float, default=0.2, help="the partner's time per call")
    parser.add_argument("--use-variants", default=DEFAULT_USE_VARIANTS, help=f"of {', '.join(USE_VARIANTS)}")
    parser.add_argument("--use-timeout-s", type=float, default=900)
    parser.add_argument("--permits", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--runs-repeat", type=int, default=7, help="repetitions of the runs/s part")
    parser.add_argument("--inprocess-runs", type=int, default=200, help="runs per in-process CPU sample")
    parser.add_argument("--isolation-repeat", type=int, default=2, help="repetitions of the isolation part")
    parser.add_argument("--isolation-s", type=float, default=90, help="seconds of slots per measurement")
    parser.add_argument("--warm-s", type=float, default=10)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    from beat_common import private_redis

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started (finally blocks)
    os.environ.setdefault("SECRET_KEY", "bench-secret-key")
    os.environ.setdefault("API_TOKEN", "bench-api-token-0123456789")
    out(f"# bench_budget.py {' '.join(sys.argv[1:])}  ({datetime.now(UTC).isoformat(timespec='seconds')}, "
        f"load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
    rows: list[dict[str, Any]] = []
    parts = args.parts.split(",")
    count_refusals()
    with private_redis() as redis_url, tempfile.TemporaryDirectory(prefix="aw-bench-budget-") as folder:
        os.environ["REDIS_URL"] = redis_url
        from models.settings import get_settings
        from tests.conftest import point_celery_at

        get_settings.cache_clear()
        point_celery_at(redis_url)
        tmp = Path(folder)
        if "use" in parts:
            rows += part_use(args, tmp, redis_url, out)
        if "permit" in parts:
            rows += part_permit(args, out)
        if "runs" in parts:
            rows += part_runs(args, tmp, redis_url, out)
        if "isolation" in parts:
            rows += part_isolation(args, tmp, redis_url, out)
    for line in summary(rows):
        out(line)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
