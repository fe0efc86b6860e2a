"""The run's one read before it fetches (`run_record.look_up`), and what its "oldest unfinished run"
subquery adds to it, as the runs table grows.

    .venv/bin/python bench/bench_look_up.py [--automations 10000] [--runs-per 1,10,100] [--calls 2000]
                                            [--dbs sqlite,postgresql]

A fresh database per store and size: N automations, each with K finished runs (an hour apart), and one in
a hundred with one unfinished (`running`) run besides. Timed in process, median of 5 passes of `--calls`
look-ups of random automations: the statement as the run sends it, and the same statement without the
subquery (the automation and the slot's run only). PostgreSQL also prints the subquery's plan.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from beat_common import fresh_database, load_automations, tomorrow  # noqa: E402

RUN_COLUMNS = ("uuid, automation_id, scheduled_for, trigger, status, records_fetched, records_matched, "
               "records_sent, attempts, chain_depth, batches_sent, budget_wait_ms, throttled, created_at, "
               "updated_at")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def load_runs(url: str, per: int) -> None:
    """K finished runs per automation, an hour apart, and one `running` run for every hundredth."""
    from sqlalchemy import text

    from models.db import make_engine

    engine = make_engine(url)
    pg = engine.dialect.name == "postgresql"
    if pg:  # timestamps without time zone, naive UTC (models.base.UTCDateTime)
        uuid_sql = "gen_random_uuid()::text"
        at = "CAST(:t0 AS timestamp) + make_interval(hours => g.x)"
        before = "CAST(:t0 AS timestamp) - interval '1 hour'"
        series, prefix, stamp = "generate_series(1, :k) AS g(x)", "", "CAST(:t0 AS timestamp)"
    else:  # SQLAlchemy's SQLite text format, microseconds included, so slots compare as stored
        uuid_sql = "lower(hex(randomblob(16)))"
        at = "strftime('%Y-%m-%d %H:%M:%S', :t0, '+' || g.x || ' hours') || '.000000'"
        before = "strftime('%Y-%m-%d %H:%M:%S', :t0, '-1 hours') || '.000000'"
        series, stamp = "g", ":t0"
        prefix = "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :k) "
    finished = (f"{prefix}INSERT INTO runs ({RUN_COLUMNS}) SELECT {uuid_sql}, a.id, {at}, 'schedule', "
                f"'succeeded', 1, 1, 1, 1, 0, 1, 0, 0, {stamp}, {stamp} FROM automations a, {series}")
    unfinished = (f"INSERT INTO runs ({RUN_COLUMNS}) SELECT {uuid_sql}, a.id, {before}, 'schedule', "
                  f"'running', 1, 1, 0, 1, 0, 0, 0, 0, {stamp}, {stamp} FROM automations a "
                  "WHERE a.id % 100 = 0")
    params = {"k": per, "t0": T0.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")}
    with engine.begin() as conn:
        conn.execute(text(finished), params)
        conn.execute(text(unfinished), params)
        if pg:
            conn.execute(text("ANALYZE runs"))
    engine.dispose()


def statements() -> tuple[Any, Any]:
    """The look-up as the run sends it, and the same without the unfinished-run subquery."""
    from sqlalchemy import and_, bindparam, select
    from sqlalchemy.orm import joinedload

    from models.automation import Automation
    from models.run import Run
    from tasks import run_record

    slot = bindparam("b_slot", type_=Run.__table__.c.scheduled_for.type)
    bare = (select(Automation, Run)
            .outerjoin(Run, and_(Run.automation_id == Automation.id, Run.scheduled_for == slot))
            .where(Automation.uuid == bindparam("b_uuid"))
            .options(joinedload(Automation.connection), joinedload(Automation.partner_function)))
    return run_record._look_up_statement(), bare  # noqa: SLF001 - the statement under measurement


def measure(url: str, calls: int) -> dict[str, float]:
    """Median µs per look-up, with and without the subquery, over 5 passes of `calls` random automations."""
    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from models import db as db_module
    from models.automation import Automation
    from models.settings import get_settings

    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    db_module.clear_caches()
    with_sub, without = statements()
    with db_module.autocommit_scope() as conn:
        uuids = list(conn.execute(select(Automation.uuid)).scalars())
    rng = random.Random(7)
    slot = T0 + timedelta(hours=1)  # every automation has a run of this slot
    out: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(5):
        picked = [rng.choice(uuids) for _ in range(calls)]
        for label, stmt in (("with", with_sub), ("without", without)):
            with db_module.autocommit_scope() as conn, Session(bind=conn) as session:
                start = time.perf_counter()
                for uuid in picked:
                    session.execute(stmt, {"b_uuid": uuid, "b_slot": slot}).first()
                    session.expunge_all()
                out[label].append((time.perf_counter() - start) / calls * 1e6)
    if db_module.get_engine(None).dialect.name == "postgresql":
        with db_module.autocommit_scope() as conn:
            plan = conn.execute(text(
                "EXPLAIN ANALYZE SELECT scheduled_for FROM runs WHERE automation_id = :a AND status IN "
                "('running', 'deferred') AND scheduled_for != :s ORDER BY scheduled_for LIMIT 1"),
                {"a": 100, "s": slot.replace(tzinfo=None)}).scalars().all()
        print("    " + "\n    ".join(plan))
    db_module.clear_caches()
    return {label: statistics.median(values) for label, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--automations", type=int, default=10_000)
    parser.add_argument("--runs-per", default="1,10,100")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--dbs", default="sqlite,postgresql")
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", "bench-secret")
    os.environ.setdefault("API_TOKEN", "bench-token")
    rows = ["| store | runs in the table | look-up (µs) | without the subquery (µs) | the subquery's share |",
            "|---|---:|---:|---:|---:|"]
    for kind in args.dbs.split(","):
        for per in (int(k) for k in args.runs_per.split(",")):
            with fresh_database(kind, f"aw_bench_look_up_{per}") as url:
                load_automations(url, args.automations, tomorrow())
                load_runs(url, per)
                total = args.automations * per + args.automations // 100
                print(f"{kind}, {total:,} runs:", flush=True)
                result = measure(url, args.calls)
                share = (result["with"] - result["without"]) / result["with"] * 100
                rows.append(f"| {kind} | {total:,} | {result['with']:.0f} | {result['without']:.0f} | "
                            f"{share:.0f} % |")
                print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
