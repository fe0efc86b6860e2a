"""Dispatch of 10,000 slots due at once, real publish to Redis: ours (pipeline) vs send_task vs RedBeat.

Usage: .venv/bin/python bench/bench_beat_dispatch.py [--n 10000] [--dbs sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from beat_common import fresh_database, load_automations, private_redis

QUEUE = "automations"


def current_slot() -> datetime:
    """This hour's slot of a '1 hour' schedule: due now, the next one is not (no catch-up)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def ours(db_url: str, redis_url: str, n: int, mode: str) -> float:
    """Slots/s of our Beat dispatching n due automations, publish mode 'pipeline' or 'send_task'."""
    import redis

    from models.db import make_engine
    from models.settings import get_settings
    from worker.beat.publish import make_publisher
    from worker.beat.scheduler import Beat
    from worker.celery_app import make_app

    load_automations(db_url, n, current_slot())
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE)
    app = make_app()
    beat = Beat(make_engine(db_url), client, make_publisher(app, client, mode), get_settings(), beat_id=mode)
    started = time.perf_counter()
    while client.llen(QUEUE) < n and time.perf_counter() - started < 300:
        beat.tick()
    elapsed = time.perf_counter() - started
    assert client.llen(QUEUE) == n, client.llen(QUEUE)
    beat.close()
    return n / elapsed


def redbeat(redis_url: str, n: int) -> float:
    """Slots/s of RedBeat with n entries due at once (each dispatched through apply_async)."""
    import redis
    from celery.schedules import schedule
    from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, acquire_distributed_beat_lock

    from worker.celery_app import make_app

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    app = make_app()
    app.conf.redbeat_redis_url = redis_url
    last = datetime.now(UTC) - timedelta(days=1, seconds=1)
    for i in range(n):
        RedBeatSchedulerEntry(f"task-{i}", "automations.run", schedule(timedelta(days=1)),
                              args=[f"a-{i}", "x"], options={"queue": QUEUE}, last_run_at=last,
                              app=app).save()
    sched = RedBeatScheduler(app=app)
    acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=sched))
    started = time.perf_counter()
    while client.llen(QUEUE) < n and time.perf_counter() - started < 300:
        sched.tick()
    elapsed = time.perf_counter() - started
    sched.close()
    return client.llen(QUEUE) / elapsed


def main() -> None:
    """All cells side by side in one run; prints a JSON line per cell and the README table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dbs", default="sqlite,postgresql")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with private_redis() as redis_url:
        os.environ.update(REDIS_URL=redis_url, LOG_LEVEL="WARNING")
        for db in args.dbs.split(","):
            for mode in ("pipeline", "send_task"):
                with fresh_database(db, "aw_bench_dispatch") as url:
                    rate = ours(url, redis_url, args.n, mode)
                    rows.append({"who": f"ours, {mode}", "db": db, "slots_per_s": rate})
                print(json.dumps(rows[-1]), flush=True)
        rate = redbeat(redis_url, args.n)
        rows.append({"who": "redbeat (apply_async)", "db": "redis", "slots_per_s": rate})
        print(json.dumps(rows[-1]), flush=True)
    print(f"| dispatcher | store | slots/s ({args.n:,} due at once) |\n|---|---|---:|")
    for r in rows:
        print(f"| {r['who']} | {r['db']} | {r['slots_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
