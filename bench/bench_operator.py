"""What an operator sees, at scale: the cost of a /metrics scrape and of GET /api/v3/automations/health with
1,000 / 100,000 / 1,000,000 automations, on SQLite and PostgreSQL (issue 14; target ≤ 100 ms at 1M).

Rows are bulk-inserted with SQL (bench/beat_common.load_automations), then given a realistic mix: half ok,
1 % failing, 0.5 % late (a slot dispatched an hour ago and never run), 0.1 % paused, 0.01 % on a disabled
connection, the rest never run; 100 deferred runs. Each figure is the median of REPEAT calls of the very
functions the endpoints call (api.metrics.exposition; models.health_query counts + late + failing), each on
a fresh session; the ratio is against the 1,000-automation figure of the same run. "cold": the per-state
counts computed at every call; the plain figures: shared through Redis (HEALTH_COUNTS_CACHE_S, default
10 s: at most one call in that window pays the cold cost). Also measured: the beat
leader's extend script with and without the tick's SET (one round trip either way).

    .venv/bin/python bench/bench_operator.py [--sizes 1000,100000,1000000] [--dbs sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.beat_common import fresh_database, load_automations, private_redis, tomorrow  # noqa: E402

REPEAT = 9
CONNECTIONS = 10_000  # the automations are spread over this many connections
LATE_AFTER_S = 120.0


def mix(url: str) -> None:
    """Health states, a disabled connection and deferred runs over the bulk-loaded rows."""
    from models.db import make_engine
    from models.partner_function import PartnerFunction
    from tests.support.factories import make_connection

    engine = make_engine(url)
    with Session(engine) as db:
        off = make_connection(db, status="INACTIVE")
        template = db.scalar(text("SELECT connection_id FROM automations WHERE id = 1"))
        db.add(PartnerFunction(connection_id=template, name="PartnerRole", direction="IMPORT"))
        db.commit()
        off_id = off.id
    pg = engine.dialect.name == "postgresql"
    first_conn, first_pf = _spread(engine, template, pg)
    ago = ((lambda s: f"now() - interval '{s} seconds'") if pg
           else (lambda s: f"datetime('now', '-{s} seconds')"))
    statements = [
        # each connection CONNECTIONS-th of the automations, with its own partner function (as in service:
        # many tenants; one connection holding them all would mislead the planners' statistics)
        f"UPDATE automations SET connection_id = {first_conn} + (id % {CONNECTIONS}), "
        f"partner_function_id = {first_pf} + (id % {CONNECTIONS})",
        f"UPDATE automations SET health_state = 'ok', health_since = {ago(86400)} WHERE id % 2 = 0",
        f"UPDATE automations SET health_state = 'failing', health_since = {ago(3600)}, "
        "consecutive_failures = 2 WHERE id % 100 = 1",
        f"UPDATE automations SET awaiting_slot = {ago(3600)} WHERE id % 200 = 3",
        "UPDATE automations SET status = 'PAUSED', next_run_at = NULL WHERE id % 1000 = 5",
        f"UPDATE automations SET connection_id = {off_id} WHERE id % 10000 = 7",
        "INSERT INTO runs (uuid, automation_id, scheduled_for, trigger, status, records_fetched, "
        "records_matched, records_sent, attempts, chain_depth, batches_sent, budget_wait_ms, throttled, "
        f"created_at, updated_at) SELECT 'r' || id, id, {ago(600)}, 'schedule', 'deferred', 0, 0, 0, 1, "
        f"0, 0, 0, 0, {ago(600)}, {ago(600)} FROM automations WHERE id <= 100",
    ]
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql))
    # as autovacuum leaves a table in service: no dead rows from the bulk updates, statistics fresh
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if pg else "ANALYZE"))
    engine.dispose()


def _spread(engine: Any, template: int, pg: bool) -> tuple[int, int]:
    """CONNECTIONS connections, each with one partner function, cloned server-side from the template's;
    the first id of each (ids are consecutive)."""
    from models.tables import Connection, PartnerFunction

    clones = []
    for model, fk in ((Connection, None), (PartnerFunction, "connection_id")):
        cols = [c.name for c in model.__table__.columns if c.name != "id"]
        uuid_sql = "gen_random_uuid()::text" if pg else "lower(hex(randomblob(16)))"
        picked = ", ".join(uuid_sql if c == "uuid" else (":first + g.x - 1" if c == fk else f"t.{c}")
                           for c in cols)
        series = "generate_series(1, :n) AS g(x)" if pg else "g"
        prefix = "" if pg else "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n) "
        table = model.__tablename__
        with engine.begin() as conn:
            first = conn.execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")).scalar()
            template_id = template if fk is None else conn.execute(text(
                f"SELECT max(id) FROM {table}")).scalar()
            conn.execute(text(f"{prefix}INSERT INTO {table} ({', '.join(cols)}) SELECT {picked} "
                              f"FROM {table} t, {series} WHERE t.id = :t"),
                         {"n": CONNECTIONS, "t": template_id, "first": clones[0] if clones else 0})
        clones.append(int(first))
    return clones[0], clones[1]


def seed_redis(client: redis.Redis) -> None:
    """Counters and histograms as a busy system has them (their size does not grow with automations)."""
    from models import keys
    from tasks.metrics import HISTOGRAMS

    for status in ("succeeded", "failed", "skipped", "below_threshold", "missed"):
        for trigger in ("schedule", "manual", "chain", "catch_up"):
            client.hset(keys.METRICS_RUNS, f"{status}|{trigger}", 1000)
    for provider in ("XERO", "QUICKBOOKS", "ZOHO_BOOKS", "SANDBOX"):
        for outcome in ("ok", "throttled", "error"):
            client.hset(keys.METRICS_PARTNER, f"{provider}|{outcome}", 500)
    for name, bounds in HISTOGRAMS.items():
        client.hset(keys.metrics_histogram(name), mapping={
            **{repr(float(b)): 10 for b in bounds}, "+Inf": 1, "sum": 1234.5, "count": 10 * len(bounds) + 1})
    client.set(keys.BEAT_LAST_TICK, f"{time.time():.3f}")


def median_ms(fn: Callable[[], object]) -> float:
    """Median wall time of REPEAT calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(url: str, client: redis.Redis) -> dict[str, float | dict[str, int]]:
    """Median ms of a scrape and of the health overview, with the per-state counts computed at every call
    (cold) and shared through Redis (HEALTH_COUNTS_CACHE_S, the default: warm), on `url`."""
    from api.metrics import exposition
    from models import health_query, keys
    from models.db import make_engine

    engine = make_engine(url)

    def scrape(cache_s: float) -> Callable[[], object]:
        def call() -> object:
            with Session(engine) as db:
                return exposition(db, client, datetime.now(UTC), LATE_AFTER_S, cache_s)
        return call

    def overview(cache_s: float) -> Callable[[], object]:
        def call() -> object:
            with Session(engine) as db:
                now = datetime.now(UTC)
                return (health_query.counts(db, now, LATE_AFTER_S, client, cache_s),
                        health_query.late(db, now, LATE_AFTER_S), health_query.failing(db, now, LATE_AFTER_S))
        return call

    client.delete(keys.HEALTH_COUNTS)
    out: dict[str, float | dict[str, int]] = {
        "scrape_cold": median_ms(scrape(0.0)), "overview_cold": median_ms(overview(0.0)),
        "scrape_warm": median_ms(scrape(3600.0)), "overview_warm": median_ms(overview(3600.0)),
    }
    client.delete(keys.HEALTH_COUNTS)
    with Session(engine) as db:
        out["counts"] = health_query.counts(db, datetime.now(UTC), LATE_AFTER_S)
    engine.dispose()
    return out


def extend_cost(client: redis.Redis) -> tuple[float, float]:
    """Median µs of the leader's extend script without and with the tick's SET, interleaved rounds."""
    from models import keys
    from tasks.locks import Lock

    lock = Lock(keys.BEAT_LEADER_LOCK, 5, client)
    stamp = (keys.BEAT_LAST_TICK, "0")
    client.set(keys.BEAT_LEADER_LOCK, "bench")
    rounds: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(7):
        for name, with_stamp in (("without", None), ("with", stamp)):
            started = time.perf_counter()
            for _ in range(2000):
                lock.extend_and_read("bench", keys.SCHEDULE_GENERATION, with_stamp)
            rounds[name].append((time.perf_counter() - started) / 2000 * 1e6)
    client.delete(keys.BEAT_LEADER_LOCK)
    return statistics.median(rounds["without"]), statistics.median(rounds["with"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--dbs", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with private_redis() as redis_url:
        client = redis.Redis.from_url(redis_url)
        seed_redis(client)
        plain, with_tick = extend_cost(client)
        print(f"beat extend script: {plain:.1f} µs without the tick's SET, {with_tick:.1f} µs with it "
              f"(+{with_tick - plain:.1f} µs, one round trip either way)", flush=True)
        print("| database | automations | scrape cold (ms) | ratio | scrape (ms) | health cold (ms) | ratio "
              "| health (ms) | late | failing |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for kind in args.dbs.split(","):
            base: dict[str, float | dict[str, int]] | None = None
            for n in sizes:
                with fresh_database(kind, f"aw_bench_operator_{n}") as url:
                    loaded = time.monotonic()
                    load_automations(url, n, tomorrow())
                    mix(url)
                    load_s = time.monotonic() - loaded
                    m = measure(url, client)
                base = base or m
                counts = m["counts"]
                assert isinstance(counts, dict)
                cold = f"{m['overview_cold']:.1f} | {_ratio(m, base, 'overview_cold')}"
                print(f"| {kind} | {n:,} | {m['scrape_cold']:.1f} | {_ratio(m, base, 'scrape_cold')} | "
                      f"{m['scrape_warm']:.1f} | {cold} | {m['overview_warm']:.1f} | {counts['late']:,} | "
                      f"{counts['failing']:,} |"
                      f"  <!-- loaded in {load_s:.0f} s -->", flush=True)


def _ratio(m: dict[str, float | dict[str, int]], base: dict[str, float | dict[str, int]], key: str) -> str:
    """m[key] against the same figure at the smallest size."""
    return f"{float(m[key]) / float(base[key]):.1f}×"  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
