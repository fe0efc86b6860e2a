"""Drift (task start − slot) at ~1,000 slots due per second: a real beat, real workers, a probe task.

N ACTIVE automations on a '1 minute' schedule, N/60 per second-of-minute phase (custom_time 00:00:SS,
jitter 0), so N/60 slots come due at every whole second. A real `celery -A worker beat` (the database
scheduler, pipeline publish) dispatches them to a Redis broker; real `celery -A tests.support.beat_probe
worker` processes run a stand-in `automations.run` that records (automation, slot, start time) in Redis.
The probe replaces the real run task on purpose: this measures scheduling (beat + broker + worker
pick-up), not a run's own work (bench_runs.py measures that).

Reported over the steady-state window (slots after the first --warm-s seconds): drift = start − slot
(p50/p99/max), the publish lag (beat's log line after each batch's commit − slot), due vs started slots
(none lost, no duplicates), the broker queue's depth, and CPU seconds of beat and workers.
Loopback only: PostgreSQL database `aw_bench_drift` (created and dropped here) or a SQLite file, and a
redis-server of the benchmark's own (beat_common.private_redis): test sessions claim databases 1-15 of the
machine's Redis, so no index there is safe to flush. Every wait is bounded in time.

Usage: .venv/bin/python bench/bench_drift.py [--per-second 1000] [--duration 75] [--workers 2]
       [--concurrency 2] [--repeat 3] [--dbs postgresql,sqlite] | tee bench/results/beat_drift.txt
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import redis
from beat_common import ROOT, fresh_database, private_redis
from sqlalchemy import text, update

DB_NAME = "aw_bench_drift"
QUEUE = "automations"
UNACKED = "unacked"  # kombu's Redis transport: messages delivered to a worker and not yet acknowledged
PROBE_KEY = "aw:test:beat-probe"  # tests.support.beat_probe.PROBE_KEY
GENERATION_KEY = "aw:schedule:generation"  # models.keys.SCHEDULE_GENERATION
PHASES = 60  # one phase per second of a 1-minute schedule
DISPATCHED_RE = re.compile(r"dispatched (\d+) run\(s\) for (\d+) due")


@dataclass
class Procs:
    """The processes one measurement started (and only these are stopped)."""

    beat: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[str, Path] = field(default_factory=dict)


def load_phased(url: str, per_second: int) -> None:
    """Migrate, one template per phase written through the models, each cloned server-side."""
    from sqlalchemy.orm import Session

    from models import migrate
    from models.db import make_engine
    from models.tables import Automation
    from tests.support.factories import make_automation, make_connection

    migrate.upgrade(url)
    engine = make_engine(url)
    parked = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)  # nothing due until armed
    with Session(engine) as db:
        conn = make_connection(db)
        ids = [make_automation(db, conn, next_run_at=parked + timedelta(seconds=p), check_on="1 minute",
                               custom_time=f"00:00:{p:02d}", code=f"t{p}").id for p in range(PHASES)]
        db.commit()
    cols = [c.name for c in Automation.__table__.columns if c.name != "id"]
    pg = engine.dialect.name == "postgresql"
    uuid_sql = "gen_random_uuid()::text" if pg else "lower(hex(randomblob(16)))"
    picked = ", ".join(uuid_sql if c == "uuid" else ("a.code || '-' || g.x" if c == "code" else f"a.{c}")
                       for c in cols)
    series = "generate_series(1, :n) AS g(x)" if pg else "g"
    prefix = "" if pg else "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n) "
    sql = (f"{prefix}INSERT INTO automations ({', '.join(cols)}) SELECT {picked} "
           f"FROM automations a, {series} WHERE a.id IN ({', '.join(map(str, ids))})")
    with engine.begin() as db_conn:
        db_conn.execute(text(sql), {"n": per_second - 1})
        if pg:
            db_conn.execute(text("ANALYZE automations"))
    engine.dispose()


def arm(url: str, t0: datetime) -> None:
    """Phase p's next_run_at := its first slot at or after t0, checked against the schedule beat computes."""
    from sqlalchemy.orm import Session

    from models.db import make_engine
    from models.scheduling import next_run_at
    from models.tables import Automation

    engine = make_engine(url)
    table = Automation.__table__
    with Session(engine) as db, db.begin():
        for p in range(PHASES):
            slot = t0 + timedelta(seconds=(p - t0.second) % PHASES)
            template = db.query(Automation).filter_by(code=f"t{p}").one()
            assert next_run_at(template, slot - timedelta(seconds=1)) == slot, (p, slot)
            assert next_run_at(template, slot) == slot + timedelta(minutes=1), (p, slot)
            db.execute(update(table).where(table.c.custom_time == f"00:00:{p:02d}").values(next_run_at=slot))
    engine.dispose()


def env_for(db_url: str, redis_url: str) -> dict[str, str]:
    """Environment of the beat and worker subprocesses: our database, our Redis, JSON logs."""
    env = dict(os.environ)
    env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
               LOG_FORMAT="json", LOG_LEVEL="INFO")
    # worker and beat refuse to start without their secrets (README "Configuration")
    env.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    env.setdefault("API_TOKEN", secrets.token_urlsafe(24))
    return env


def spawn(procs: Procs, name: str, args: list[str], env: dict[str, str],
          log_dir: Path) -> subprocess.Popen[bytes]:
    """`python -m celery <args>` in its own session (so stopping it stops its pool children, nothing else)."""
    path = log_dir / f"{name}.log"
    with open(path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "celery", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    procs.logs[name] = path
    return proc


def start_workers(procs: Procs, env: dict[str, str], log_dir: Path, n: int, concurrency: int,
                  pool: str) -> None:
    """n probe workers on the run queue, product settings (acks_late, prefetch 1, events), log WARNING."""
    for i in range(n):
        args = ["-A", "tests.support.beat_probe", "worker", "-l", "WARNING", "-n", f"drift{i}@%h",
        "-Q", QUEUE,
                "-c", str(concurrency), "-P", pool, "--without-gossip", "--without-mingle", "-E"]
        procs.workers.append(spawn(procs, f"worker{i}", args, env, log_dir))


def warm_up(client: redis.Redis, n: int, timeout_s: float = 90.0) -> None:
    """Send n probe tasks and wait until the workers ran them all (they are up and their pools forked)."""
    from worker.celery_app import make_app

    app = make_app()
    for i in range(n):
        app.send_task("automations.run", args=[f"warm-{i}", "warm-up"], queue=QUEUE)
    if not wait_until(lambda: client.llen(PROBE_KEY) >= n, timeout_s):
        raise RuntimeError(f"workers ran {client.llen(PROBE_KEY)} of {n} warm-up tasks in {timeout_s:.0f} s")
    client.delete(PROBE_KEY)


def start_beat(procs: Procs, env: dict[str, str], log_dir: Path, timeout_s: float = 60.0) -> None:
    """`celery -A worker beat` (database scheduler, INFO: one line per dispatched batch); wait until ready."""
    args = ["-A", "worker", "beat", "-l", "INFO", "-s", str(log_dir / "beat-schedule")]
    procs.beat = spawn(procs, "beat", args, env, log_dir)
    path = procs.logs["beat"]
    if not wait_until(lambda: "database scheduler ready" in path.read_text(errors="replace"), timeout_s):
        tail = path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"beat not ready in {timeout_s:.0f} s:\n{tail}")


def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll predicate until truthy or timeout_s passed."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Warm shutdown of one process we started (and its own group), SIGKILL if it does not exit."""
    if proc is not None:
        from tests.support.processes import stop as stop_group

        stop_group(proc, timeout_s=15.0)


def cpu_s(proc: subprocess.Popen[bytes] | None) -> float:
    """User + system CPU seconds of a process and its children so far."""
    if proc is None or proc.poll() is not None:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def cpu_snapshot(procs: Procs) -> dict[str, float]:
    """CPU seconds of beat and of all workers together."""
    return {"beat": cpu_s(procs.beat), "workers": sum(cpu_s(w) for w in procs.workers)}


def watch(client: redis.Redis, until: float) -> list[int]:
    """Sample the broker queue's depth every 0.25 s until the wall-clock time `until`."""
    depths: list[int] = []
    while time.time() < until:
        depths.append(int(client.llen(QUEUE)))
        time.sleep(0.25)
    return depths


def drain(client: redis.Redis, timeout_s: float = 120.0) -> bool:
    """Wait until the queue is empty and the probe list stopped growing for a second."""
    deadline = time.monotonic() + timeout_s
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = int(client.llen(PROBE_KEY))
        if count != last:
            last, stable_since = count, time.monotonic()
        elif client.llen(QUEUE) == 0 and time.monotonic() - stable_since >= 1.0:
            return True
        time.sleep(0.2)
    return False


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile q (0-100) of values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def beat_batches(path: Path) -> list[tuple[float, int]]:
    """(log time, automations selected) of every batch beat logged, in order (its line follows the commit)."""
    batches = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        match = DISPATCHED_RE.search(str(entry.get("message", "")))
        if match:
            batches.append((datetime.fromisoformat(entry["time"]).timestamp(), int(match.group(2))))
    return batches


def publish_lags(batches: list[tuple[float, int]], t0: float, per_second: int) -> list[tuple[float, float]]:
    """(slot, batch log time − slot) per dispatched message: beat takes slots in next_run_at order."""
    lags: list[tuple[float, float]] = []
    k = 0
    for logged, count in batches:
        for i in range(k, k + count):
            slot = t0 + i // per_second
            lags.append((slot, logged - slot))
        k += count
    return lags


def batch_profile(batches: list[tuple[float, int]], lo: float, hi: float) -> dict[str, float]:
    """Per second in [lo, hi): batches, time from the slot to the first and to the last batch's commit."""
    per_second: dict[int, list[float]] = {}
    for logged, _count in batches:
        second = math.floor(logged)
        if lo <= second < hi:
            per_second.setdefault(second, []).append(logged - second)
    firsts = [min(v) for v in per_second.values()]
    lasts = [max(v) for v in per_second.values()]
    return {"batches_per_s": statistics.mean(len(v) for v in per_second.values()) if per_second else 0.0,
            "first_batch_ms_p50": 1000 * pct(firsts, 50), "last_batch_ms_p50": 1000 * pct(lasts, 50),
            "last_batch_ms_p99": 1000 * pct(lasts, 99), "last_batch_ms_max": 1000 * max(lasts, default=0.0)}


def _slot_record(record: dict[str, Any]) -> tuple[str, float, float] | None:
    """(automation, slot, start) of one probe record; None for anything that is not a slot's run."""
    try:
        slot = datetime.fromisoformat(str(record["scheduled_for"])).timestamp()
        return str(record["automation_uuid"]), slot, float(record["started_at"])
    except (KeyError, ValueError, TypeError):
        return None


def queued_slots(client: redis.Redis) -> set[tuple[str, float]]:
    """(automation, slot) of every message not started: on the broker queue, or taken by a worker and not
    acknowledged (kombu's `unacked` hash; a warm shutdown normally puts those back on the queue)."""
    found: set[tuple[str, float]] = set()
    messages = [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
    messages += [json.loads(raw)[0] for raw in client.hvals(UNACKED)]  # [message, exchange, routing key]
    for message in messages:
        try:
            body = json.loads(base64.b64decode(message["body"]))
            found.add((str(body[0][0]), datetime.fromisoformat(str(body[0][1])).timestamp()))
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return found


def analyse(records: list[dict[str, Any]], queued: set[tuple[str, float]], batches: list[tuple[float, int]],
            t0: float, args: argparse.Namespace) -> dict[str, Any]:
    """Drift, publish lag, due vs started, duplicates over the steady-state slots [t0+warm, t0+duration)."""
    lo, hi = t0 + args.warm_s, t0 + args.duration
    window = [w for w in map(_slot_record, records) if w is not None and lo <= w[1] < hi]
    distinct = {(uuid, slot) for uuid, slot, _ in window}
    per_slot = Counter(slot for _, slot in distinct)
    drift = [started - slot for _, slot, started in window]
    starts = sorted(started for _, _, started in window)
    lags = [lag for slot, lag in publish_lags(batches, t0, args.per_second) if lo <= slot < hi]
    due = args.per_second * int(hi - lo)
    waiting = {q for q in queued if lo <= q[1] < hi} - distinct
    return {
        "due": due, "started": len(distinct), "still_queued": len(waiting),
        "unaccounted": due - len(distinct) - len(waiting),
        "duplicates": len(window) - len(distinct),
        "per_slot_min": min(per_slot.values(), default=0), "per_slot_max": max(per_slot.values(), default=0),
        "drift_p50_ms": 1000 * pct(drift, 50), "drift_p99_ms": 1000 * pct(drift, 99),
        "drift_max_ms": 1000 * max(drift, default=float("nan")),
        "publish_lag_p50_ms": 1000 * pct(lags, 50), "publish_lag_p99_ms": 1000 * pct(lags, 99),
        "publish_lag_max_ms": 1000 * max(lags, default=float("nan")), "published": len(lags),
        "start_rate_per_s": (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0,
        **batch_profile(batches, lo, hi),
    }


def measure(kind: str, args: argparse.Namespace, log_dir: Path, redis_url: str) -> dict[str, Any]:
    """One measurement: fresh database and Redis db, workers, beat, armed slots, the window, the drain."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    procs = Procs()
    load_avg = os.getloadavg()
    try:
        with fresh_database(kind, DB_NAME) as db_url:
            started = time.perf_counter()
            load_phased(db_url, args.per_second)
            load_s = time.perf_counter() - started
            env = env_for(db_url, redis_url)
            start_workers(procs, env, log_dir, args.workers, args.concurrency, args.pool)
            warm_up(client, 4 * args.workers * args.concurrency)
            start_beat(procs, env, log_dir)
            t0 = datetime.fromtimestamp(math.ceil(time.time()) + args.lead_s, UTC)
            arm(db_url, t0)
            client.incr(GENERATION_KEY)  # as the API does: beat re-reads the earliest due time
            result = run_window(client, procs, t0.timestamp(), args)
            result.update(load_s=load_s, loadavg_1m_before=load_avg[0], db=kind)
            return result
    finally:
        for proc in [procs.beat, *procs.workers]:
            stop(proc)
        client.flushdb()
        client.close()


def run_window(client: redis.Redis, procs: Procs, t0: float, args: argparse.Namespace) -> dict[str, Any]:
    """Let beat dispatch for --duration s after t0, stop it, drain the queue, then analyse."""
    wait_until(lambda: time.time() >= t0 + args.warm_s, args.lead_s + args.warm_s + 5)
    cpu_before, wall_before = cpu_snapshot(procs), time.time()
    depths = watch(client, t0 + args.duration)
    cpu_after, wall = cpu_snapshot(procs), time.time() - wall_before
    watch(client, t0 + args.duration + 1.0)  # the last slot's batches commit
    stop(procs.beat)
    drained = drain(client, args.drain_s)
    for worker in procs.workers:  # a backlog left after the drain stays still while it is counted
        stop(worker)
    from tests.support.beat_probe import received

    records, queued = received(client), queued_slots(client)
    result = analyse(records, queued, beat_batches(procs.logs["beat"]), t0, args)
    result.update(
        drained=drained, queue_depth_max=max(depths, default=0),
        queue_depth_p50=pct([float(d) for d in depths], 50),
        beat_cpu_pct=100 * (cpu_after["beat"] - cpu_before["beat"]) / wall,
        workers_cpu_pct=100 * (cpu_after["workers"] - cpu_before["workers"]) / wall,
        beat_errors=procs.logs["beat"].read_text(errors="replace").count('"level": "ERROR"'),
        n_automations=args.per_second * PHASES, workers=args.workers, concurrency=args.concurrency,
        pool=args.pool)
    return result


def summary(rows: list[dict[str, Any]]) -> str:
    """The README table: per store, the median of the repeats and their spread (min–max)."""
    lines = ["| store | N automations | due/s | workers × concurrency | drift p50 (ms) | drift p99 (ms) | "
             "drift max (ms) | publish lag p99 (ms) | started / due | runs |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for kind in dict.fromkeys(r["db"] for r in rows):
        group = [r for r in rows if r["db"] == kind]
        first = group[0]
        cell = {key: _median_spread([r[key] for r in group]) for key in
                ("drift_p50_ms", "drift_p99_ms", "drift_max_ms", "publish_lag_p99_ms")}
        started, due = sum(r["started"] for r in group), sum(r["due"] for r in group)
        lines.append(f"| {kind} | {first['n_automations']:,} | {first['n_automations'] // PHASES:,} | "
                     f"{first['workers']} × {first['concurrency']} ({first['pool']}) | "
                     f"{cell['drift_p50_ms']} | "
                     f"{cell['drift_p99_ms']} | {cell['drift_max_ms']} | {cell['publish_lag_p99_ms']} | "
                     f"{started:,} / {due:,} | {len(group)} |")
    return "\n".join(lines)


def _median_spread(values: list[float]) -> str:
    """'median (min–max)' of a few repeats, in whole units."""
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-second", type=int, default=1000, help="slots due each second (N = 60 ×)")
    parser.add_argument("--duration", type=float, default=75.0, help="seconds of slots after t0")
    parser.add_argument("--warm-s", type=float, default=10.0, help="first seconds of slots left out")
    parser.add_argument("--lead-s", type=float, default=3.0, help="t0 this long after the beat is ready")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--pool", default="prefork")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drain-s", type=float, default=30.0, help="longest wait for the backlog")
    parser.add_argument("--dbs", default="postgresql")
    return parser.parse_args()


def main() -> None:
    """Every measurement in one run; a JSON line each, then the README table."""
    args = parse_args()
    rows: list[dict[str, Any]] = []
    with private_redis() as redis_url, tempfile.TemporaryDirectory(prefix="aw-bench-drift-") as folder:
        os.environ.update(REDIS_URL=redis_url, LOG_LEVEL="WARNING")
        for kind in args.dbs.split(","):
            for i in range(args.repeat):
                log_dir = Path(folder) / f"{kind}-{i}"
                log_dir.mkdir()
                rows.append({"run": i + 1, **measure(kind, args, log_dir, redis_url)})
                print(json.dumps(rows[-1]), flush=True)
    print(summary(rows))


if __name__ == "__main__":
    main()
