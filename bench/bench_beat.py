"""Beat tick with 1K / 100K / 1M schedules stored, none due: ours vs sqlalchemy-celery-beat vs RedBeat.

For each scheduler and N, the schedules are bulk-loaded, then a fresh child process builds the
scheduler and runs its first tick (start-up), then 200 more ticks (median tick), and reports its RSS.
Usage: .venv/bin/python bench/bench_beat.py [--sizes 1000,100000,1000000] [--dbs sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from beat_common import ROOT, fresh_database, load_automations, private_redis, rss_mb, tomorrow

TICKS = 200
EVERY_DAY = {"__type__": "interval", "every": 86400.0, "relative": False}
SCB_MAX = 100_000  # sqlalchemy-celery-beat holds every row in memory; 1M does not finish in minutes


def child(kind: str, db_url: str, redis_url: str) -> dict[str, float]:
    """In a fresh process: build the scheduler, first tick (start-up), then TICKS ticks."""
    os.environ.update(DATABASE_URL=db_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING")
    from worker.celery_app import make_app

    app = make_app()
    app.conf.beat_schedule = {}
    started = time.perf_counter()
    sched = _build(kind, app, db_url, redis_url)
    sched.tick()
    startup = time.perf_counter() - started
    ticks_ms = []
    for _ in range(TICKS if kind != "sqlalchemy-celery-beat" else 30):
        t0 = time.perf_counter()
        sched.tick()
        ticks_ms.append((time.perf_counter() - t0) * 1000)
    return {"startup_s": startup, "tick_ms": statistics.median(ticks_ms), "rss_mb": rss_mb()}


def _build(kind: str, app: Any, db_url: str, redis_url: str) -> Any:
    """The scheduler under test, as `celery beat` would build it (plus RedBeat's lock)."""
    if kind == "ours":
        from worker.beat.scheduler import DatabaseScheduler

        return DatabaseScheduler(app=app)
    if kind == "redbeat":
        from redbeat.schedulers import RedBeatScheduler, acquire_distributed_beat_lock

        app.conf.redbeat_redis_url = redis_url
        sched = RedBeatScheduler(app=app)
        acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=sched))
        return sched
    from sqlalchemy_celery_beat.schedulers import DatabaseScheduler as SCBScheduler

    app.conf.beat_dburi = db_url
    return SCBScheduler(app=app)


def load_scb(db_url: str, n: int) -> None:
    """N interval entries (every day, last run now: none due) in sqlalchemy-celery-beat's tables."""
    from sqlalchemy_celery_beat.models import IntervalSchedule, PeriodicTask
    from sqlalchemy_celery_beat.session import SessionManager

    manager = SessionManager()
    engine, _ = manager.create_session(db_url)
    manager.prepare_models(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(IntervalSchedule.__table__.insert(), [{"every": 1, "period": "days"}])
        rows = [{"name": f"task-{i}", "task": "automations.run", "args": "[]", "kwargs": "{}",
                 "enabled": True, "last_run_at": now, "total_run_count": 0, "one_off": False,
                 "description": "",
                 "discriminator": "intervalschedule", "schedule_id": 1, "date_changed": now}
                for i in range(n)]
        for start in range(0, n, 10_000):
            conn.execute(PeriodicTask.__table__.insert(), rows[start:start + 10_000])
    engine.dispose()


def load_redbeat(redis_url: str, n: int) -> None:
    """N RedBeat entries (every day, last run now) written as RedBeatSchedulerEntry.save() would."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    now = datetime.now(UTC)
    due = (now + timedelta(days=1)).timestamp()
    meta = json.dumps({"last_run_at": {"__type__": "datetime", "year": now.year, "month": now.month,
                                       "day": now.day, "hour": now.hour, "minute": now.minute,
                                       "second": now.second, "microsecond": 0, "timezone": "UTC"}})
    with client.pipeline(transaction=False) as pipe:
        for i in range(n):
            definition = json.dumps({"name": f"task-{i}", "task": "automations.run", "args": [],
                                     "kwargs": {}, "options": {}, "enabled": True, "schedule": EVERY_DAY})
            pipe.hset(f"redbeat:task-{i}", mapping={"definition": definition, "meta": meta})
            pipe.zadd("redbeat::schedule", {f"redbeat:task-{i}": due})
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()


def run_child(kind: str, db_url: str, redis_url: str) -> dict[str, float]:
    """Measure in a subprocess so start-up and RSS are the scheduler's own."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, db_url, redis_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(sizes: list[int], dbs: list[str]) -> list[dict[str, Any]]:
    """Every (scheduler, database, N) cell, side by side in one run."""
    results: list[dict[str, Any]] = []
    with private_redis() as redis_url:
        for n in sizes:
            for db in dbs:
                with fresh_database(db, "aw_bench") as url:
                    load_automations(url, n, tomorrow())
                    cell = run_child("ours", url, redis_url)
                    results.append({"scheduler": "ours", "db": db, "n": n, **cell})
                if n <= SCB_MAX:
                    with fresh_database(db, "aw_bench_scb") as url:
                        load_scb(url, n)
                        results.append({"scheduler": "sqlalchemy-celery-beat", "db": db, "n": n,
                                        **run_child("sqlalchemy-celery-beat", url, redis_url)})
                print(json.dumps(results[-1]), flush=True)
            load_redbeat(redis_url, n)
            results.append({"scheduler": "redbeat", "db": "redis", "n": n,
                            **run_child("redbeat", "sqlite://", redis_url)})
            print(json.dumps(results[-1]), flush=True)
    return results


def table(results: list[dict[str, Any]]) -> str:
    """The README table."""
    lines = ["| scheduler | store | N | median tick (ms) | start-up (s) | beat RSS (MB) |",
             "|---|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['scheduler']} | {r['db']} | {r['n']:,} | {r['tick_ms']:.3f} | "
                     f"{r['startup_s']:.2f} | {r['rss_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    """Parse arguments; either one child measurement or the whole comparison."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--dbs", default="sqlite,postgresql")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    results = measure([int(s) for s in args.sizes.split(",")], args.dbs.split(","))
    print(table(results))


if __name__ == "__main__":
    main()
