"""Soak: the full stack (API with its sandbox, beat, prefork workers) on PostgreSQL for a bounded time.

    .venv/bin/python bench/soak.py [--duration-s 3600] [--automations 10000] [--interval-min 10]
                                   [--workers 2] [--concurrency 4] [--sample-s 30]

Loopback only. Creates the PostgreSQL database `aw_soak` (SOAK_POSTGRES_URL's server, trust auth) and
drops it at the end; uses Redis database 14 (SOAK_REDIS_URL), flushed at the start and at the end only.
Seeds N automations on one SANDBOX connection (the sandbox is the one the started API serves at /sandbox),
every `--interval-min` minutes, phases spread evenly over the interval by custom_time (so the nominal slot
is the dispatch time: drift is runs.started_at - runs.scheduled_for), since_last_look_up on, seed 000's
criteria (AccountNumber EQUALS 1QKGUL AND ContactID DOES_NOT_HAVE_VALUE), half on suppliers, half on
customers. Starts uvicorn (1 process), beat and the workers with LOG_LEVEL=WARNING, samples every
`--sample-s` seconds into bench/results/soak.csv and writes the summary to bench/results/soak.txt.
Every process it started is stopped by its pid (SIGTERM, then SIGKILL of its own process group).

Why 10 minutes (16.7 runs/s for 10,000): a load the 2-vCPU host sustains with room to spare (the worker
costs ~11 ms of CPU per run, the API ~3 ms per sandbox page since the sandbox generates each record
version once), so drift reflects scheduling rather than a saturated machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from worker.stack.processes import Child, Supervisor  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("SOAK_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/14")
DB_NAME = "aw_soak"
WARMUP_S = 300.0
WINDOW_S = 600
FIRST_SLOT_LEAD_S = 30.0
HEALTH_TIMEOUT_S = 90.0
STATUSES = ("queued", "running", "succeeded", "failed", "skipped", "below_threshold", "missed")
STATUS_SQL = "SELECT status, count(*) FROM runs GROUP BY status"
ERROR_RE = re.compile(r"\b(ERROR|CRITICAL|WARNING)[/:]|Traceback")
CRITERIA = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
    {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
]}]


@dataclass
class FileSupervisor(Supervisor):
    """worker.stack.processes.Supervisor, with each child's output going to a log file of its own."""

    log_dir: Path = Path(".")

    def _pump(self, child: Child) -> None:
        """Copy the child's output into `<log_dir>/<name>.log`."""
        assert child.proc is not None and child.proc.stdout is not None
        with open(self.log_dir / f"{child.name}.log", "ab") as out:
            for raw in iter(child.proc.stdout.readline, b""):
                out.write(raw)
                out.flush()
        child.proc.stdout.close()


@dataclass
class Sampler:
    """State between samples: the previous sample time and each process's CPU seconds."""

    engine: Engine
    client: redis.Redis
    children: list[Child]
    start: datetime
    prev_at: datetime
    cpu: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def log(line: str) -> None:
    """A timestamped progress line on stdout."""
    print(f"{datetime.now(UTC):%H:%M:%S} {line}", flush=True)


def free_port() -> int:
    """A free loopback TCP port for the API."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_args() -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration-s", type=float, default=3600.0, help="measured time (default 3600)")
    p.add_argument("--automations", type=int, default=10_000, help="automations seeded (default 10000)")
    p.add_argument("--interval-min", type=int, default=10, help="every automation's interval (default 10)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--concurrency", type=int, default=4, help="prefork children per worker (default 4)")
    p.add_argument("--sample-s", type=float, default=30.0, help="sampling period (default 30)")
    p.add_argument("--out", default="soak", help="result file stem in bench/results (default soak)")
    p.add_argument("--keep-logs", action="store_true", help="keep the process logs' folder")
    return p.parse_args()


# --- database and Redis -------------------------------------------------------------------------------

def create_database() -> str:
    """Drop and create `aw_soak`; its URL."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                     {"n": DB_NAME})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}"'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=DB_NAME).render_as_string(hide_password=False)


def drop_database() -> None:
    """Drop `aw_soak` (its sessions terminated first)."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                     {"n": DB_NAME})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}"'))
    admin.dispose()


def point_at(env: dict[str, str]) -> None:
    """This process's settings and engine use the soak's environment."""
    from models import db
    from models.settings import get_settings

    os.environ.update(env)
    get_settings.cache_clear()
    db.clear_caches()


# --- seeding ------------------------------------------------------------------------------------------

def bundle(interval_min: int) -> dict[str, Any]:
    """The connection, partner function and template automation, imported through the API's services."""
    return {
        "connection": {"provider": "SANDBOX", "remote_instance_id": "soak", "remote_instance_name": "Soak",
                       "integration_access_token": "soak-token", "token_type": "Bearer",
                       "company_name": "Soak Ltd"},
        "partner_functions": [{"partner_function": {"name": "Soak sync", "direction": "IMPORT",
                                                    "object_name": "supplier", "event_name": "soakEvent"}}],
        "automations": [{"integration": {
            "automation_details": {
                "name": "Soak template", "code": "soak-0", "applies_to": "supplier",
                "applies_to_function": "all", "automation_type": "timerBased", "direction": "IMPORT",
                "check_on": f"{interval_min} minutes", "custom_time": "00:00:00",
                "perform_action": "Soak sync", "since_last_look_up": "true", "ignore_threshold": "1",
                "additional_criteria": "true"},
            "additional_criteria_details": CRITERIA}}],
    }


def seed(n: int, interval_min: int) -> None:
    """Import the template, then insert n-1 copies with phases spread evenly over the interval."""
    from sqlalchemy import delete, insert, select

    from models.db import get_engine, session_scope
    from models.settings import get_settings
    from models.tables import Automation
    from worker.cli.importer import Importer

    with session_scope() as session:
        Importer(session, get_settings()).import_document(bundle(interval_min))
    cols = Automation.__table__.c
    with get_engine().begin() as conn:
        template = dict(conn.execute(select(*cols).where(cols.code == "soak-0")).mappings().one())
        rows = [clone(template, i, n, interval_min) for i in range(n)]
        conn.execute(delete(Automation).where(Automation.id == template["id"]))
        for start in range(0, n, 1000):
            conn.execute(insert(Automation), rows[start:start + 1000])
        conn.execute(text("ANALYZE automations"))


def clone(template: dict[str, Any], i: int, n: int, interval_min: int) -> dict[str, Any]:
    """Automation i: its own uuid, code, phase (custom_time), schedule and first dispatch time."""
    from models.base import new_uuid, utcnow
    from models.schedule import parse_schedule

    phase = int(i * interval_min * 60 / n)
    custom_time = f"00:{phase // 60:02d}:{phase % 60:02d}"
    now = utcnow()
    schedule = parse_schedule(f"{interval_min} minutes", None, custom_time, "UTC", now)
    row = {k: v for k, v in template.items() if k != "id"}
    row.update(uuid=new_uuid(), code=f"soak-{i}", name=f"Soak {i}", custom_time=custom_time,
               applies_to="supplier" if i % 2 == 0 else "customer", schedule=schedule.to_dict(),
               next_run_at=schedule.next_fire_after(now + timedelta(seconds=FIRST_SLOT_LEAD_S)),
               created_at=now, updated_at=now)
    return row


# --- processes ----------------------------------------------------------------------------------------

def start_stack(sup: FileSupervisor, args: argparse.Namespace, port: int, var: Path) -> None:
    """uvicorn (1 process), the workers, beat; LOG_LEVEL=WARNING everywhere."""
    py = sys.executable
    celery = [py, "-m", "celery", "-A", "worker"]
    sup.start("api", [py, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
                      "--log-level", "warning", "--no-access-log"])
    for w in range(args.workers):
        sup.start(f"worker{w + 1}", [*celery, "worker", "-l", "WARNING", "-n", f"soak{w + 1}@%h",
                                     "-c", str(args.concurrency), "-P", "prefork",
                                     "--without-gossip", "--without-mingle"])
    sup.start("beat", [*celery, "beat", "-l", "WARNING", "-s", str(var / "celerybeat-schedule")])


def wait_healthy(port: int, sup: FileSupervisor) -> bool:
    """GET /health answers 200 within HEALTH_TIMEOUT_S and nothing died."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline and sup.first_exited() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(
                f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            if resp.status == 200:
                return True
        time.sleep(0.5)
    return False


def stop_in_order(sup: FileSupervisor) -> None:
    """SIGTERM beat, then the workers (they finish the runs in hand), then the rest; all bounded in time."""
    for prefix, grace_s in (("beat", 10.0), ("worker", 30.0)):
        group = [c for c in sup.children if c.name.startswith(prefix) and c.running and c.proc]
        for child in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
        for child in group:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=grace_s)  # type: ignore[union-attr]
    sup.stop_all(grace_s=10.0)


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (prefork children)."""
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    return []


def rss_cpu(pid: int) -> tuple[float, float, int]:
    """(RSS MB, CPU seconds, process count) summed over the process tree."""
    rss = cpu = 0.0
    procs = tree(pid)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            rss += p.memory_info().rss / 2**20
            t = p.cpu_times()
            cpu += t.user + t.system
    return rss, cpu, len(procs)


# --- sampling -----------------------------------------------------------------------------------------

def sample(s: Sampler) -> dict[str, Any]:
    """One CSV row: runs by status, runs/s and drift of the interval, queue, RSS and CPU per process."""
    now = datetime.now(UTC)
    span = (now - s.prev_at).total_seconds()
    row: dict[str, Any] = {"at": now.isoformat(timespec="seconds"),
                           "elapsed_s": round((now - s.start).total_seconds(), 1)}
    with s.engine.connect() as conn:
        counts = {str(k): int(v) for k, v in conn.execute(text(STATUS_SQL))}
        done = conn.execute(text("SELECT count(*) FROM runs WHERE finished_at > :a AND finished_at <= :b "
                                 "AND status <> 'missed'"), naive(s.prev_at, now)).scalar_one()
        drift = conn.execute(text(DRIFT_SQL + " WHERE started_at > :a AND started_at <= :b"),
                             naive(s.prev_at, now)).one()
    row.update({f"runs_{k}": counts.get(k, 0) for k in STATUSES})
    row["runs_per_s"] = round(done / span, 2) if span > 0 else 0.0
    row.update(started=drift.n, drift_p50_s=r3(drift.p50), drift_p99_s=r3(drift.p99),
               drift_max_s=r3(drift.mx))
    row.update(queue=s.client.llen("automations"), redis_keys=s.client.dbsize())
    for child in s.children:
        rss, cpu, nproc = rss_cpu(child.proc.pid) if child.proc else (0.0, 0.0, 0)
        row[f"rss_{child.name}_mb"] = round(rss, 1)
        used = cpu - s.cpu.get(child.name, cpu)
        row[f"cpu_{child.name}_pct"] = round(100 * used / span, 1) if span > 0 else 0.0
        row[f"procs_{child.name}"] = nproc
        s.cpu[child.name] = cpu
    row["load1"] = round(os.getloadavg()[0], 2)
    s.prev_at = now
    s.rows.append(row)
    return row


_LAG = "extract(epoch FROM started_at - scheduled_for)"
DRIFT_SQL = (f"SELECT count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY {_LAG}) AS p50, "
             f"percentile_cont(0.99) WITHIN GROUP (ORDER BY {_LAG}) AS p99, max({_LAG}) AS mx FROM runs")


def naive(a: datetime, b: datetime) -> dict[str, datetime]:
    """Bind parameters for the naive-UTC timestamp columns."""
    return {"a": a.astimezone(UTC).replace(tzinfo=None), "b": b.astimezone(UTC).replace(tzinfo=None)}


def r3(value: Any) -> float | None:
    """A float rounded to milliseconds, None kept."""
    return None if value is None else round(float(value), 3)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """All samples so far (rewritten each time, so a killed soak still leaves its CSV)."""
    if not rows:
        return
    names = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def sample_loop(s: Sampler, args: argparse.Namespace, sup: FileSupervisor, stop: threading.Event,
                csv_path: Path) -> str:
    """Sample every `sample_s` until the duration is over, a stop, or a process dies; why it ended."""
    deadline = time.monotonic() + args.duration_s
    while True:
        wait = min(args.sample_s, deadline - time.monotonic())
        if wait > 0 and stop.wait(wait):
            sample(s)
            return "stopped by a signal"
        row = sample(s)
        write_csv(csv_path, s.rows)
        log(f"runs/s {row['runs_per_s']}, drift p99 {row['drift_p99_s']} s, queue {row['queue']}, "
            f"failed {row['runs_failed']}, rss " + ", ".join(
                f"{c.name} {row[f'rss_{c.name}_mb']}" for c in s.children))
        if (dead := sup.first_exited()) is not None:
            return f"{dead.name} exited (status {dead.proc.returncode if dead.proc else None})"
        if time.monotonic() >= deadline:
            return "duration reached"


# --- summary ------------------------------------------------------------------------------------------

def summary(s: Sampler, args: argparse.Namespace, ended: str, logs: Path, end: datetime,
            duplicates: int | None) -> str:
    """The text report: totals, rates, drift overall and per window, RSS over time, errors."""
    duration = (end - s.start).total_seconds()
    lines = [f"soak: {args.automations} automations every {args.interval_min} min on PostgreSQL, "
             f"{args.workers} worker(s) x {args.concurrency} prefork, 1 uvicorn (API + sandbox), 1 beat",
             f"started {s.start:%Y-%m-%d %H:%M:%S} UTC, measured {duration:.0f} s ({ended}); "
             f"nominal load {args.automations / (args.interval_min * 60):.1f} runs/s; "
             f"host: {os.cpu_count()} CPUs, load1 mean {mean([r['load1'] for r in s.rows]):.2f}", ""]
    with s.engine.connect() as conn:
        lines += totals(conn, duration)
        lines += drift_lines(conn, s.start)
        lines += failures(conn)
        lines += integrity(conn, args.interval_min, end, duplicates)
    lines += rss_lines(s.rows, [c.name for c in s.children])
    lines += log_errors(logs)
    return "\n".join(lines) + "\n"


def totals(conn: Any, duration: float) -> list[str]:
    """Runs by status and the mean rate."""
    counts = {str(k): int(v) for k, v in conn.execute(text(STATUS_SQL))}
    done = sum(v for k, v in counts.items() if k not in ("queued", "running", "missed"))
    by = ", ".join(f"{k} {counts[k]}" for k in STATUSES if counts.get(k))
    return [f"runs total {sum(counts.values())}: {by}",
            f"mean runs/s (finished, not missed) {done / duration:.2f}", ""]


def drift_lines(conn: Any, start: datetime) -> list[str]:
    """Drift p50/p99/max over the whole run and per 10-minute window of started_at."""
    whole = conn.execute(text(DRIFT_SQL + " WHERE started_at IS NOT NULL")).one()
    out = ["drift = runs.started_at - runs.scheduled_for (s)",
           f"  whole run: n {whole.n}, p50 {fmt(whole.p50)}, p99 {fmt(whole.p99)}, max {fmt(whole.mx)}"]
    t0 = start.astimezone(UTC).replace(tzinfo=None)
    win = ", floor(extract(epoch FROM started_at - :t0) / :w) AS win FROM runs"
    sql = DRIFT_SQL.replace(" FROM runs", win)
    rows = conn.execute(text(sql + " WHERE started_at IS NOT NULL GROUP BY win ORDER BY win"),
                        {"t0": t0, "w": WINDOW_S}).all()
    for r in rows:
        lo = int(r.win) * WINDOW_S // 60
        out.append(f"  {lo:3d}-{lo + WINDOW_S // 60:3d} min: n {r.n}, p50 {fmt(r.p50)}, p99 {fmt(r.p99)}, "
                   f"max {fmt(r.mx)}")
    return [*out, ""]


def failures(conn: Any) -> list[str]:
    """Failed runs grouped by reason and error, and skipped/missed reasons."""
    rows = conn.execute(text("SELECT status, reason, left(coalesce(error, ''), 160) AS e, count(*) AS n "
                             "FROM runs WHERE status IN ('failed', 'skipped', 'missed') "
                             "GROUP BY status, reason, e ORDER BY n DESC LIMIT 20")).all()
    out = ["failed/skipped/missed runs by reason:" if rows else "failed/skipped/missed runs: none"]
    out += [f"  {r.n:6d} {r.status}: {r.reason} | {r.e}" for r in rows]
    return [*out, ""]


def rss_lines(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """RSS at start/middle/end per process, and the least-squares slope after the warm-up (MB/h)."""
    if not rows:
        return []
    out = [f"RSS (MB, process + children) at start / {WARMUP_S / 60:.0f} min / middle / end, "
           "least-squares slope after the warm-up:"]
    for name in names:
        key = f"rss_{name}_mb"
        warm = [(r["elapsed_s"], r[key]) for r in rows if r["elapsed_s"] >= WARMUP_S]
        at = [rows[0][key], warm[0][1] if warm else float("nan"), rows[len(rows) // 2][key], rows[-1][key]]
        out.append(f"  {name:8s} " + " / ".join(f"{v:7.1f}" for v in at)
                   + f"   slope {fmt(slope(warm))} MB/h (n {len(warm)})")
    cpu = ", ".join(f"{n} {mean([r[f'cpu_{n}_pct'] for r in rows[1:]]):.0f}%" for n in names)
    out += [f"mean CPU (% of one core): {cpu}",
            f"Redis db keys at end {rows[-1]['redis_keys']} (task results, kept RESULT_EXPIRES_S); "
            f"queue max {max(r['queue'] for r in rows)}", ""]
    return out


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) in MB per hour; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    mx, my = mean([p[0] for p in points]), mean([p[1] for p in points])
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den * 3600 if den else None


def integrity(conn: Any, interval_min: int, end: datetime, duplicates: int | None) -> list[str]:
    """No slot lost (consecutive runs of an automation exactly one interval apart, none left behind), and
    no batch applied twice (the sandbox's duplicate Idempotency-Key count)."""
    gaps = conn.execute(text(
        "SELECT count(*) FROM (SELECT scheduled_for - lag(scheduled_for) OVER (PARTITION BY automation_id "
        "ORDER BY scheduled_for) AS gap FROM runs) g "
        "WHERE gap IS NOT NULL AND gap <> make_interval(mins => :m)"), {"m": interval_min}).scalar_one()
    behind = conn.execute(text(
        "SELECT count(*) FROM automations WHERE last_run_at IS NULL "
        "OR last_run_at < :t - make_interval(mins => :m) - interval '1 minute'"),
        {"m": interval_min, "t": end.astimezone(UTC).replace(tzinfo=None)}).scalar_one()
    return [f"slots: {gaps} gap(s) other than {interval_min} min between an automation's consecutive runs; "
            f"{behind} automation(s) without a run in the last interval at the end; sandbox duplicate "
            f"Idempotency-Keys {'n/a' if duplicates is None else duplicates}", ""]


def sandbox_duplicates(port: int) -> int | None:
    """How many invocations the sandbox saw again under an Idempotency-Key it had applied."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/invocations?limit=1", timeout=5) as r:
            return int(json.load(r)["duplicates"])
    except (OSError, ValueError, KeyError):
        return None


def log_errors(logs: Path) -> list[str]:
    """ERROR/CRITICAL/Traceback and WARNING lines in the process logs, grouped by message (ids masked)."""
    out = ["error and warning lines in the process logs:"]
    for path in sorted(logs.glob("*.log")):
        found: Counter[str] = Counter()
        for line in path.read_text(errors="replace").splitlines():
            if ERROR_RE.search(line):
                found[re.sub(r"[0-9a-f-]{8,}|\d+", "#", line.strip())[:200]] += 1
        out.append(f"  {path.stem}: {sum(found.values())}")
        out += [f"    {n:6d} {msg}" for msg, n in found.most_common(8)]
    return out


def mean(values: list[float]) -> float:
    """The arithmetic mean (0 for nothing)."""
    return sum(values) / len(values) if values else 0.0


def fmt(value: Any) -> str:
    """A number with 3 decimals, or n/a."""
    return "n/a" if value is None else f"{float(value):.3f}"


# --- main ---------------------------------------------------------------------------------------------

def soak_env(database_url: str, port: int) -> dict[str, str]:
    """The environment of this process and every child."""
    return {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "API_PORT": str(port),
            "SANDBOX_URL": f"http://127.0.0.1:{port}/sandbox", "API_TOKEN": secrets.token_urlsafe(24),
            "SECRET_KEY": secrets.token_urlsafe(32), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT)}


def on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM end the soak early; the summary and the clean-up still happen."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def run(args: argparse.Namespace, stop: threading.Event, var: Path) -> None:
    """Prepare, start, sample, stop, summarise."""
    from models import migrate

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    port = free_port()
    env = soak_env(create_database(), port)
    point_at(env)
    migrate.upgrade(env["DATABASE_URL"])
    t = time.monotonic()
    seed(args.automations, args.interval_min)
    log(f"seeded {args.automations} automations in {time.monotonic() - t:.1f} s; starting the stack")
    sup = FileSupervisor(env={**os.environ, **env}, cwd=str(ROOT), log_dir=var)
    engine = create_engine(env["DATABASE_URL"], pool_size=1)
    try:
        start_stack(sup, args, port, var)
        if not wait_healthy(port, sup):
            raise RuntimeError("the API did not answer /health (see the logs in " + str(var) + ")")
        now = datetime.now(UTC)
        s = Sampler(engine, client, list(sup.children), now, now)
        sample(s)
        log(f"stack up (API on {port}); sampling every {args.sample_s:.0f} s for {args.duration_s:.0f} s")
        ended = sample_loop(s, args, sup, stop, RESULTS / f"{args.out}.csv")
        end = datetime.now(UTC)
        duplicates = sandbox_duplicates(port)
        write_csv(RESULTS / f"{args.out}.csv", s.rows)
    finally:
        log("stopping the stack: beat, then the workers (warm), then the API")
        stop_in_order(sup)
    report = summary(s, args, ended, var, end, duplicates)
    (RESULTS / f"{args.out}.txt").write_text(report)
    print(report, flush=True)
    engine.dispose()


def main() -> int:
    """Run the soak; always stop what it started, flush its Redis database and drop its database."""
    args = parse_args()
    stop = threading.Event()
    on_signals(stop)
    RESULTS.mkdir(parents=True, exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="aw-soak-"))
    log(f"logs in {var}")
    try:
        run(args, stop, var)
    finally:
        from models import db

        with contextlib.suppress(Exception):
            db.get_engine().dispose()
        with contextlib.suppress(Exception):
            redis.Redis.from_url(REDIS_URL).flushdb()
        with contextlib.suppress(Exception):
            drop_database()
        if not args.keep_logs:
            shutil.rmtree(var, ignore_errors=True)
        log("cleaned up: database dropped, Redis db flushed" + ("" if args.keep_logs else ", logs removed"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
