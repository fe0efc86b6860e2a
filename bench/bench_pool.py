"""Throughput at real partner latency: runs/s and memory (PSS) per worker pool, drift, and a mixed load.

Every run here is a real `automations.run` on a real worker (`automation-worker worker`'s command line,
with the pool and concurrency given), PostgreSQL (a database of its own, created and dropped), a private
redis-server, and a loopback partner in a process of its own that waits `latency` before every answer
(a threaded HTTP server: one thread per connection, a 4,096 listen backlog). A run makes one GET (one page
of 10 records) and one POST (the 3 that match seed 000's criteria) through the connection's budget
(SANDBOX connections with rate_limits {"concurrent": 1000}: every call takes a permit and a lease, no limit
binds).

    .venv/bin/python bench/bench_pool.py gevent                      # may the gevent pool be measured here?
    .venv/bin/python bench/bench_pool.py grid [--latencies 50,300,1000] [--configs prefork:2,threads:64,...]
    .venv/bin/python bench/bench_pool.py targets [--today prefork:2] [--default threads:64]
    .venv/bin/python bench/bench_pool.py mixed [--configs prefork:16,threads:64,gevent:128] [--rate 15]

grid: for each latency and config, `--warm` runs to start the pool, then about `--measure-s` seconds'
worth of runs published at once (one per automation, automations spread over `--connections`
connections): runs/s = runs / (last finished - published); PSS of the worker's processes sampled every
0.5 s (peak and after); worker CPU per run; every run checked: succeeded, one attempt, each
Idempotency-Key applied once by the partner. A config `threads:32x2` is two worker processes.

targets: today's default (make run: prefork -c 2; compose: prefork, one process per core = 2 here) and the
chosen default side by side at 300 ms, then the chosen default under a real beat at 80 % of the rate it
reached (automations on `1 minute`, due spread evenly over the seconds of the minute): drift =
runs.started_at - scheduled_for, as the soak measures it.

mixed: per config, a real beat keeps `--rate` runs/s of the runs above going at 300 ms, and one run on a
connection of its own fetches 200,000 records (bench_criteria's, 20 fields, 10 pages of 20,000) and
evaluates seed 001's criteria over them (its ignore_threshold keeps it from sending 70,000 records): the
other runs' duration and drift while it is in progress, against before and after it.

Raw output: bench/results/pool_<command>.txt (JSON lines, then the tables). Loopback only; every wait is
bounded; only processes this script started are stopped, by pid.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

RESULTS = ROOT / "bench" / "results"
DB_NAME = "aw_bench_pool"
PHASES = 60
RECORDS_PER_PAGE = 10
IO_CRITERIA = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
    {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"}]}]
HEAVY_RECORDS = 200_000
HEAVY_PAGE = 20_000
HEAVY_OBJECT = "bigsupplier"
NOT_BINDING = {"concurrent": 1000}


def log(line: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"{datetime.now(UTC):%H:%M:%S} {line}", file=sys.stderr, flush=True)


# --- the loopback partner (its own process) -------------------------------------------------------------

class PartnerState:
    """What the partner counts: calls, connections opened, Idempotency-Keys applied and repeated."""

    def __init__(self, pages: dict[str, list[bytes]]) -> None:
        self.lock = threading.Lock()
        self.latency_s = 0.0
        self.pages = pages
        self.calls = 0
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.applied: set[str] = set()
        self.duplicates = 0

    def stats(self) -> dict[str, Any]:
        """A snapshot (the counters, not the keys)."""
        with self.lock:
            return {"calls": self.calls, "connections": self.connections, "max_in_flight": self.max_in_flight,
                    "applied": len(self.applied), "duplicates": self.duplicates, "latency_s": self.latency_s}


def io_records() -> list[dict[str, Any]]:
    """The page every I/O-bound run fetches: 10 suppliers, 3 matching seed 000's criteria."""
    out = []
    for i in range(RECORDS_PER_PAGE):
        out.append({"id": f"s{i}", "created_at": "2024-01-01T00:00:00+00:00",
                    "updated_at": "2024-01-01T00:00:00+00:00", "Name": f"Supplier {i}",
                    "AccountNumber": "1QKGUL" if i % 3 == 0 else f"ACC{i:03d}",
                    "ContactID": "" if i % 3 == 0 and i < 9 else f"c-{i}"})
    return out


def build_pages(heavy: int) -> dict[str, list[bytes]]:
    """Serialized pages: `supplier` one page of 10; `bigsupplier` `heavy` records in pages of 20,000."""
    pages = {"supplier": [json.dumps({"records": io_records(), "next_cursor": None}).encode()]}
    if heavy:
        from bench_criteria import make_records

        records = make_records(heavy)
        chunks = [records[i:i + HEAVY_PAGE] for i in range(0, heavy, HEAVY_PAGE)]
        pages[HEAVY_OBJECT] = [json.dumps({"records": chunk, "next_cursor": str(n + 1) if n + 1 < len(chunks)
                                           else None}).encode() for n, chunk in enumerate(chunks)]
    return pages


class PartnerHandler(BaseHTTPRequestHandler):
    """GET /objects/<name>?cursor=N, POST /partner-functions/<uuid>/invoke (after the latency);
    GET /stats, POST /config {"latency_s": x} and POST /reset (at once)."""

    state: PartnerState
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.connections += 1

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/stats":
            return self._reply(200, json.dumps(self.state.stats()).encode())
        if parts.path.startswith("/echo"):
            self._wait()
            return self._reply(200, json.dumps({"i": parse_qs(parts.query).get("i", [""])[0]}).encode())
        name = parts.path.rsplit("/", 1)[-1]
        pages = self.state.pages.get(name)
        if not parts.path.startswith("/objects/") or pages is None:
            return self._reply(404, b'{"error": "not found"}')
        cursor = int(parse_qs(parts.query).get("cursor", ["0"])[0])
        self._wait()
        return self._reply(200, pages[cursor])

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if path == "/config":
            with self.state.lock:
                self.state.latency_s = float(json.loads(body)["latency_s"])
            return self._reply(200, b"{}")
        if path == "/reset":
            with self.state.lock:
                self.state.calls = self.state.connections = self.state.max_in_flight = 0
                self.state.applied.clear()
                self.state.duplicates = 0
            return self._reply(200, b"{}")
        if not (path.startswith("/partner-functions/") and path.endswith("/invoke")):
            return self._reply(404, b'{"error": "not found"}')
        self._wait()
        key = self.headers.get("Idempotency-Key") or ""
        with self.state.lock:
            duplicate = key in self.state.applied
            self.state.duplicates += duplicate
            self.state.applied.add(key)
        self._reply(200, b'{"status": "duplicate"}' if duplicate else b'{"status": "accepted"}')

    def _wait(self) -> None:
        """Count the call and sleep the partner's latency."""
        with self.state.lock:
            self.state.calls += 1
            self.state.in_flight += 1
            self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
            delay = self.state.latency_s
        time.sleep(delay)
        with self.state.lock:
            self.state.in_flight -= 1

    def _reply(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


class PartnerServer(ThreadingHTTPServer):
    """Many connections at once: a deep listen backlog, a daemon thread per connection."""

    request_queue_size = 4096
    daemon_threads = True


def serve_partner(port: int, heavy: int) -> None:
    """The partner process: build the pages, say `ready <port>`, serve until killed."""
    state = PartnerState(build_pages(heavy))
    handler = type("Handler", (PartnerHandler,), {"state": state})
    server = PartnerServer(("127.0.0.1", port), handler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


@dataclass
class Partner:
    """The partner process as seen from the benchmark."""

    proc: subprocess.Popen[bytes]
    url: str

    def call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET (no body) or POST a JSON body; the JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def latency(self, seconds: float) -> None:
        self.call("/config", {"latency_s": seconds})


@contextlib.contextmanager
def partner(heavy: int = 0) -> Iterator[Partner]:
    """Start the partner process on a free loopback port; stop it (by pid) afterwards."""
    from beat_common import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "partner", "--port", str(port), "--heavy", str(heavy)],
                            stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()  # bounded: the partner prints it or dies
        if not line.startswith("ready"):
            raise RuntimeError(f"the partner did not start: {line!r}")
        yield Partner(proc, f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- database, automations ------------------------------------------------------------------------------

@dataclass
class Bench:
    """One benchmark environment: database, Redis, partner, automations, the worker environment."""

    db_url: str
    redis_url: str
    partner: Partner
    env: dict[str, str]
    automations: list[str] = field(default_factory=list)  # uuids, in creation order
    heavy_uuid: str | None = None
    log_dir: Path = Path(".")


def point_at(db_url: str, redis_url: str) -> None:
    """This process's settings, engine and Celery app use the benchmark's database and Redis."""
    from models import db as db_module
    from models.settings import get_settings

    os.environ.update(DATABASE_URL=db_url, REDIS_URL=redis_url)
    get_settings.cache_clear()
    db_module.clear_caches()
    from tests.conftest import point_celery_at

    point_celery_at(redis_url)


def seed(partner_url: str, per_phase: int, connections: int, heavy: bool) -> tuple[list[str], str | None]:
    """`connections` SANDBOX connections to the partner (budget on, limits that do not bind), a partner
    function each, and 60 x per_phase automations on `1 minute` (phase p due at second p), spread over the
    connections; parked a day ahead until armed. The heavy automation on a connection of its own."""
    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from models.db import get_engine
    from models.tables import Automation
    from tests.support.factories import make_automation, make_connection, make_partner_function

    engine = get_engine()
    parked = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    templates: list[int] = []
    heavy_uuid = None
    with Session(engine) as db:
        conns = []
        for c in range(connections):
            conn = make_connection(db, api_domain=partner_url, account_server=partner_url,
                                   remote_instance_id=f"tenant-{c}", rate_limits=NOT_BINDING)
            conns.append((conn, make_partner_function(db, conn, name=f"Sync {c}")))
        per_template = math.ceil(per_phase / connections)
        for p in range(PHASES):
            for c, (conn, pf) in enumerate(conns):
                auto = make_automation(db, conn, pf, next_run_at=parked + timedelta(seconds=p),
                                       check_on="1 minute", custom_time=f"00:00:{p:02d}", code=f"t{p}-{c}",
                                       since_last_look_up=False, additional_criteria=True,
                                       criteria=IO_CRITERIA, ignore_threshold=1)
                templates.append(auto.id)
        if heavy:
            from bench_criteria import CRITERIA

            conn = make_connection(db, api_domain=partner_url, account_server=partner_url,
                                   remote_instance_id="tenant-heavy", rate_limits=NOT_BINDING)
            pf = make_partner_function(db, conn, name="Heavy sync")
            heavy_uuid = make_automation(db, conn, pf, next_run_at=parked, code="heavy",
                                         applies_to=HEAVY_OBJECT, since_last_look_up=False,
                                         additional_criteria=True, criteria=CRITERIA,
                                         ignore_threshold=10**9).uuid
        db.commit()
    cols = [c.name for c in Automation.__table__.columns if c.name != "id"]
    picked = ", ".join("gen_random_uuid()::text" if c == "uuid" else
                       ("a.code || '-' || g.x" if c == "code" else f"a.{c}") for c in cols)
    with engine.begin() as conn:
        if per_template > 1:
            ids = ", ".join(map(str, templates))
            conn.execute(text(f"INSERT INTO automations ({', '.join(cols)}) SELECT {picked} FROM "
                              f"automations a, generate_series(1, :n) AS g(x) WHERE a.id IN ({ids})"),
                         {"n": per_template - 1})
        conn.execute(text("ANALYZE automations"))
        found = conn.execute(select(Automation.uuid, Automation.connection_id)
                             .where(Automation.code != "heavy").order_by(Automation.id)).all()
    by_connection: dict[int, list[str]] = {}
    for uuid, connection_id in found:
        by_connection.setdefault(connection_id, []).append(str(uuid))
    # interleaved: consecutive automations belong to different connections
    columns = list(by_connection.values())
    uuids = [col[i] for i in range(max(map(len, columns))) for col in columns if i < len(col)]
    return uuids, heavy_uuid


def arm(t0: datetime) -> None:
    """Phase p's automations: next_run_at := their first slot at or after t0 (beat takes it from there)."""
    from sqlalchemy import update

    from models.db import get_engine
    from models.tables import Automation

    table = Automation.__table__
    with get_engine().begin() as conn:
        for p in range(PHASES):
            slot = t0 + timedelta(seconds=(p - t0.second) % PHASES)
            conn.execute(update(table).where(table.c.custom_time == f"00:00:{p:02d}",
                                             table.c.code != "heavy").values(next_run_at=slot))


def park() -> None:
    """Nothing due until armed again."""
    from sqlalchemy import update

    from models.db import get_engine
    from models.tables import Automation

    table = Automation.__table__
    with get_engine().begin() as conn:
        conn.execute(update(table).values(next_run_at=datetime.now(UTC) + timedelta(days=1)))


@contextlib.contextmanager
def bench_env(per_phase: int, connections: int, heavy: bool = False) -> Iterator[Bench]:
    """Database, private Redis, partner, automations; everything dropped/stopped afterwards."""
    from beat_common import fresh_database, private_redis

    from models import migrate
    from models.db import get_engine

    with (private_redis() as redis_url, fresh_database("postgresql", DB_NAME) as db_url,
          partner(HEAVY_RECORDS if heavy else 0) as the_partner,
          tempfile.TemporaryDirectory(prefix="aw-bench-pool-") as tmp):
        folder = os.environ.get("AW_BENCH_LOGS") or tmp  # keep the processes' logs there when set
        Path(folder).mkdir(parents=True, exist_ok=True)
        secret = "bench-pool-secret-key-0123456789abcdef"
        os.environ.update(SECRET_KEY=secret, API_TOKEN="bench-pool-token", LOG_LEVEL="WARNING")
        point_at(db_url, redis_url)
        migrate.upgrade(db_url)
        started = time.monotonic()
        uuids, heavy_uuid = seed(the_partner.url, per_phase, connections, heavy)
        log(f"seeded {len(uuids)} automations on {connections} connections "
            f"in {time.monotonic() - started:.1f} s")
        env = dict(os.environ)
        env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
                   LOG_LEVEL="WARNING", LOG_FORMAT="text")
        try:
            yield Bench(db_url, redis_url, the_partner, env, uuids, heavy_uuid, Path(folder))
        finally:
            get_engine().dispose()


# --- workers, measurements ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    """A worker set-up: pool, concurrency per process, worker processes."""

    pool: str
    concurrency: int
    processes: int = 1

    @classmethod
    def parse(cls, text: str) -> Config:
        """`threads:64` or `threads:32x2`."""
        pool, _, rest = text.partition(":")
        size, _, count = rest.partition("x")
        return cls(pool, int(size), int(count or 1))

    @property
    def name(self) -> str:
        return f"{self.pool} -c {self.concurrency}" + (f" x {self.processes} processes" if self.processes > 1
                                                       else "")

    @property
    def slots(self) -> int:
        return self.concurrency * self.processes


class Workers:
    """The worker processes of one measurement, each in its own session; stopped by pid."""

    def __init__(self, bench: Bench, config: Config, tag: str) -> None:
        from models.settings import get_settings
        from worker.stack.run import worker_command

        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(config.processes):
            command = worker_command(get_settings(), f"{tag}-{i}@%h", config.pool, config.concurrency)
            path = bench.log_dir / f"{tag}-{i}.log"
            with open(path, "ab") as out:
                self.procs.append(subprocess.Popen(command, cwd=ROOT, env=bench.env, stdout=out,
                                                   stderr=subprocess.STDOUT, start_new_session=True))
            self.logs.append(path)

    def tree(self) -> list[Any]:
        """Every live process of the workers (main processes and pool children)."""
        import psutil

        found = []
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(proc.pid)
                found += [root, *root.children(recursive=True)]
        return found

    def pss_mb(self) -> float:
        """Proportional set size of all of them (shared pages divided among the sharers)."""
        import psutil

        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_full_info().pss
        return total / 2**20

    def rss_mb(self) -> float:
        import psutil

        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    def cpu_s(self) -> float:
        import psutil

        total = 0.0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        """SIGTERM (warm shutdown), SIGKILL of each process group after 20 s."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


class Sampler:
    """PSS of the workers every 0.5 s in a thread: the peak and the last value."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.peak = 0.0
        self.last = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.last = self.workers.pss_mb()
        self.peak = max(self.peak, self.last)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, self.workers.pss_mb())


def publish(uuids: list[str], slot: datetime) -> None:
    """One `automations.run` per automation for `slot`, pushed at once (beat's pipeline publisher)."""
    from models.redis_clients import redis_client
    from worker.beat.publish import make_publisher
    from worker.celery_app import app

    publisher = make_publisher(app, redis_client(), "pipeline")
    publisher.publish([(u, slot.isoformat()) for u in uuids])


def outcomes(slot: datetime) -> dict[str, Any]:
    """The runs of one slot: by status, attempts over 1, first start and last finish (epoch seconds)."""
    from sqlalchemy import text

    from models.db import get_engine

    naive = slot.astimezone(UTC).replace(tzinfo=None)
    with get_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT count(*) FILTER (WHERE status IN "
            "('succeeded', 'failed', 'skipped', 'below_threshold', 'missed')),"
            " count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE attempts > 1),"
            " extract(epoch FROM min(started_at)), extract(epoch FROM max(finished_at)),"
            " count(*) FROM runs WHERE scheduled_for = :s"), {"s": naive}).one()
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM runs WHERE scheduled_for = :s "
                                          "GROUP BY status"), {"s": naive}).all())
        durations = [float(v) for v in conn.execute(text(
            "SELECT duration_ms FROM runs WHERE scheduled_for = :s AND duration_ms IS NOT NULL"),
            {"s": naive}).scalars()]
    return {"finished": int(row[0]), "succeeded": int(row[1]), "repeated": int(row[2]),
            "first_start": float(row[3] or 0), "last_finish": float(row[4] or 0), "rows": int(row[5]),
            "statuses": {str(k): int(v) for k, v in statuses.items()}, "durations_ms": durations}


def pg_sessions() -> int:
    """Sessions PostgreSQL has opened for the benchmark database so far (connection churn)."""
    from sqlalchemy import text

    from models.db import get_engine

    with get_engine().connect() as conn:
        return int(conn.execute(text("SELECT sessions FROM pg_stat_database WHERE datname = :d"),
                                {"d": DB_NAME}).scalar_one())


def wait_finished(slot: datetime, n: int, timeout_s: float, workers: Workers) -> dict[str, Any]:
    """Poll until n runs of the slot are finished (bounded); the outcomes."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = outcomes(slot)
        if got["finished"] >= n or time.monotonic() > deadline or not workers.alive():
            return got
        time.sleep(0.25)


def warm_up(bench: Bench, workers: Workers, config: Config, slot: datetime, cursor: list[int],
            at_least: int, latency_s: float) -> tuple[float, int]:
    """Runs of `slot` on max(at_least, the workers' slots) automations, until all finished: the pool is
    started, its connections open; the rough runs/s of that batch, and how many of its runs never finished
    (within 60 s after the others: a pool that loses runs)."""
    warm = max(at_least, config.slots)
    began = time.monotonic()
    publish(take(bench, cursor, warm), slot)
    got = wait_finished(slot, warm, 60 + warm * latency_s, workers)
    if not workers.alive():
        raise RuntimeError("a worker died during the warm-up\n" + workers.log_text()[-3000:])
    if got["finished"] < warm:
        log(f"warm-up: {got['finished']} of {warm} runs finished; going on")
    return warm / max(0.05, time.monotonic() - began), warm - got["finished"]


def throughput(bench: Bench, config: Config, latency_ms: int, slot: datetime, args: argparse.Namespace,
               cursor: list[int]) -> dict[str, Any]:
    """One config at one latency: warm-up, then about --measure-s seconds' worth of runs at once."""
    bench.partner.latency(latency_ms / 1000)
    tag = f"{config.pool}{config.concurrency}x{config.processes}-{latency_ms}"
    workers = Workers(bench, config, tag)
    try:
        rough, lost = warm_up(bench, workers, config, slot, cursor, args.warm, latency_ms / 1000)
        expected = max(rough, min(config.slots / (2 * latency_ms / 1000 + 0.03), 150.0))
        n = int(min(args.max_runs, max(3 * config.slots, 40, expected * args.measure_s)))
        uuids = take(bench, cursor, n)
        measure_slot = slot + timedelta(seconds=1)
        bench.partner.call("/reset", {})
        sessions0, cpu0 = pg_sessions(), workers.cpu_s()
        with Sampler(workers) as pss:
            published = time.time()
            publish(uuids, measure_slot)
            got = wait_finished(measure_slot, n, 120 + 3 * n / max(rough, 0.1), workers)
        cpu = workers.cpu_s() - cpu0
        stats = bench.partner.call("/stats")
        elapsed = got["last_finish"] - published
        log_text = workers.log_text()
        return {
            "config": config.name, "pool": config.pool, "concurrency": config.concurrency,
            "processes": config.processes, "latency_ms": latency_ms, "runs": n,
            "runs_per_s": round(n / elapsed, 2) if got["finished"] >= n and elapsed > 0 else 0.0,
            "elapsed_s": round(elapsed, 2), "finished": got["finished"], "succeeded": got["succeeded"],
            "statuses": got["statuses"], "repeated_runs": got["repeated"],
            "partner_applied": stats["applied"], "partner_duplicates": stats["duplicates"],
            "partner_calls": stats["calls"], "tcp_connections_opened": stats["connections"],
            "partner_max_in_flight": stats["max_in_flight"],
            "duration_p50_ms": pct(got["durations_ms"], 50), "duration_p99_ms": pct(got["durations_ms"], 99),
            "pss_peak_mb": round(pss.peak, 1), "pss_after_mb": round(pss.last, 1),
            "rss_after_mb": round(workers.rss_mb(), 1), "worker_processes": len(workers.tree()),
            "cpu_ms_per_run": round(1000 * cpu / n, 2), "pg_sessions_opened": pg_sessions() - sessions0,
            "pool_full_warnings": log_text.count("Connection pool is full"),
            "error_lines": error_lines(log_text),
            "loadavg_1m": round(os.getloadavg()[0], 2), "warm_up_unfinished": lost,
        }
    finally:
        workers.stop()


def error_lines(text: str) -> int:
    """ERROR / CRITICAL lines of Celery's log format, and tracebacks."""
    return sum(1 for line in text.splitlines()
               if "ERROR/" in line or "CRITICAL/" in line or line.startswith("Traceback"))


def take(bench: Bench, cursor: list[int], n: int) -> list[str]:
    """The next n automations (round robin over all of them, so consecutive ones are on other connections)."""
    pool = bench.automations
    start = cursor[0]
    cursor[0] += n
    return [pool[(start + i) % len(pool)] for i in range(n)]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, rounded; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 1)


# --- drift under beat -----------------------------------------------------------------------------------

@dataclass
class Beat:
    """A real `celery -A worker beat` (the database scheduler)."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, bench: Bench, tag: str) -> Beat:
        path = bench.log_dir / f"beat-{tag}.log"
        env = {**bench.env, "LOG_LEVEL": "INFO"}
        with open(path, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", "beat", "-l", "INFO",
                                     "-s", str(bench.log_dir / f"beat-{tag}-schedule")], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        beat = cls(proc, path)
        deadline = time.monotonic() + 60
        while "database scheduler ready" not in path.read_text(errors="replace"):
            if time.monotonic() > deadline or proc.poll() is not None:
                beat.stop()
                raise RuntimeError("beat not ready:\n" + path.read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        return beat

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def beat_window(bench: Bench, workers: Workers, tag: str, duration_s: float,
                heavy_at_s: float | None = None) -> dict[str, Any]:
    """Arm the automations, run beat for duration_s of slots, stop it, let the runs finish; the runs of the
    window (and the heavy run, if one was triggered heavy_at_s after t0)."""
    from models import keys
    from models.redis_clients import redis_client
    from tasks.enqueue import enqueue_run

    bench.partner.call("/reset", {})
    beat = Beat.start(bench, tag)
    t0 = datetime.fromtimestamp(math.ceil(time.time()) + 3, UTC)
    heavy_slot = None
    try:
        arm(t0)
        redis_client().incr(keys.SCHEDULE_GENERATION)
        with Sampler(workers) as pss:
            cpu0 = workers.cpu_s()
            if heavy_at_s is not None and bench.heavy_uuid:
                sleep_until(t0.timestamp() + heavy_at_s)
                heavy_slot = datetime.now(UTC)
                enqueue_run(bench.heavy_uuid, heavy_slot)
            sleep_until(t0.timestamp() + duration_s)
            park()
            redis_client().incr(keys.SCHEDULE_GENERATION)
            cpu = workers.cpu_s() - cpu0
            beat.stop()
            settle(heavy_slot, 180)
    finally:
        beat.stop()
    rows = window_runs(t0, duration_s)
    stats = bench.partner.call("/stats")
    return {"t0": t0.timestamp(), "rows": rows, "heavy": heavy_run(heavy_slot), "pss_peak_mb": pss.peak,
            "pss_after_mb": pss.last, "cpu_pct": 100 * cpu / duration_s, "partner": stats,
            "log": workers.log_text()}


def sleep_until(when: float) -> None:
    """Sleep until the epoch time `when` (bounded by it)."""
    while (left := when - time.time()) > 0:
        time.sleep(min(left, 0.5))


def settle(heavy_slot: datetime | None, timeout_s: float) -> None:
    """Until no run is queued or running any more (and the heavy one finished), bounded."""
    from sqlalchemy import text

    from models.db import get_engine

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with get_engine().connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM runs WHERE status IN ('queued', 'running')"))
        from models.redis_clients import redis_client

        heavy_done = heavy_slot is None or heavy_run(heavy_slot).get("finished_at")
        if not left.scalar() and not redis_client().llen("automations") and heavy_done:
            return
        time.sleep(0.5)


def window_runs(t0: datetime, duration_s: float) -> list[dict[str, Any]]:
    """Every run of a slot in [t0, t0 + duration): slot, start, finish (epoch s), status, attempts."""
    from sqlalchemy import text

    from models.db import get_engine

    lo = t0.astimezone(UTC).replace(tzinfo=None)
    hi = lo + timedelta(seconds=duration_s)
    with get_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT extract(epoch FROM r.scheduled_for), extract(epoch FROM r.started_at), "
            "extract(epoch FROM r.finished_at), r.status, r.attempts, r.duration_ms, r.automation_id "
            "FROM runs r JOIN automations a ON a.id = r.automation_id "
            "WHERE r.scheduled_for >= :lo AND r.scheduled_for < :hi AND a.code <> 'heavy'"),
            {"lo": lo, "hi": hi}).all()
    return [{"slot": float(r[0]), "start": float(r[1]) if r[1] is not None else None,
             "finish": float(r[2]) if r[2] is not None else None, "status": r[3], "attempts": r[4],
             "duration_ms": r[5], "automation": r[6]} for r in rows]


def heavy_run(slot: datetime | None) -> dict[str, Any]:
    """The heavy run's row: start, finish, status, counts."""
    if slot is None:
        return {}
    from sqlalchemy import text

    from models.db import get_engine

    with get_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT extract(epoch FROM r.started_at), extract(epoch FROM r.finished_at), r.status, "
            "r.records_fetched, r.records_matched, r.duration_ms FROM runs r JOIN automations a "
            "ON a.id = r.automation_id WHERE a.code = 'heavy' ORDER BY r.id DESC LIMIT 1")).first()
    if row is None:
        return {}
    return {"started_at": float(row[0]) if row[0] else None, "finished_at": float(row[1]) if row[1] else None,
            "status": row[2], "records_fetched": row[3], "records_matched": row[4], "duration_ms": row[5]}


def drift_summary(rows: list[dict[str, Any]], warm_s: float, t0: float, duration_s: float) -> dict[str, Any]:
    """Drift (start - slot) over the slots after the first warm_s seconds; every slot's outcome."""
    window = [r for r in rows if r["slot"] >= t0 + warm_s]
    drift = [r["start"] - r["slot"] for r in window if r["start"] is not None]
    due = len(window)
    return {"slots": due, "due_per_s": round(due / (duration_s - warm_s), 1),
            "drift_p50_s": pct(drift, 50), "drift_p99_s": pct(drift, 99),
            "drift_max_s": round(max(drift), 3) if drift else float("nan"),
            "succeeded": sum(r["status"] == "succeeded" for r in window),
            "not_succeeded": sum(r["status"] != "succeeded" for r in window),
            "repeated": sum((r["attempts"] or 0) > 1 for r in window),
            "duration_p50_ms": pct([r["duration_ms"] for r in window if r["duration_ms"] is not None], 50),
            "duration_p99_ms": pct([r["duration_ms"] for r in window if r["duration_ms"] is not None], 99)}


# --- commands -------------------------------------------------------------------------------------------

class Output:
    """JSON lines and tables, printed and kept for bench/results/pool_<name>.txt."""

    def __init__(self, name: str) -> None:
        self.path = RESULTS / f"pool_{name}.txt"
        self.lines: list[str] = [f"# bench_pool.py {' '.join(sys.argv[1:])}  "
                                 f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
                                 f"load {os.getloadavg()[0]:.2f})"]

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(self.lines) + "\n")


def cmd_grid(args: argparse.Namespace) -> None:
    """runs/s and PSS per latency and config."""
    out = Output(args.out or "grid")
    configs = [Config.parse(c) for c in args.configs.split(",")]
    latencies = [int(x) for x in args.latencies.split(",")]
    rows: list[dict[str, Any]] = []
    with bench_env(args.per_phase, args.connections) as bench:
        cursor = [0]
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        for li, latency in enumerate(latencies):
            for ci, config in enumerate(configs):
                slot = base + timedelta(minutes=li * 100 + ci)
                log(f"{config.name} at {latency} ms")
                row = throughput(bench, config, latency, slot, args, cursor)
                rows.append(row)
                out(json.dumps(row))
    for line in grid_table(rows):
        out(line)


def grid_table(rows: list[dict[str, Any]]) -> list[str]:
    """The README table: per latency and config, runs/s, PSS, per process and per GB, CPU, checks."""
    lines = ["| latency | config | runs/s | per worker process | PSS peak (MB) | runs/s per GB | "
             "CPU ms/run | run p50 / p99 (ms) | succeeded / runs | repeated | worker log errors | "
             "TCP conns | PG sessions |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gb = r["pss_peak_mb"] / 1024
        lines.append(
            f"| {r['latency_ms']} ms | {r['config']} | {r['runs_per_s']:.1f} | "
            f"{r['runs_per_s'] / r['processes']:.1f} | {r['pss_peak_mb']:.0f} | {r['runs_per_s'] / gb:.0f} | "
            f"{r['cpu_ms_per_run']:.1f} | {r['duration_p50_ms']:.0f} / {r['duration_p99_ms']:.0f} | "
            f"{r['succeeded']} / {r['runs']} | {r['repeated_runs'] + r['partner_duplicates']} | "
            f"{r['error_lines']} | {r['tcp_connections_opened']} | {r['pg_sessions_opened']} |")
    return lines


def cmd_targets(args: argparse.Namespace) -> None:
    """Today's default and the chosen one side by side at 300 ms; drift of the chosen one at 80 %."""
    out = Output(args.out or "targets")
    today, chosen = Config.parse(args.today), Config.parse(args.default)
    per_phase = max(args.per_phase, 1)
    with bench_env(per_phase, args.connections) as bench:
        cursor = [0]
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        rates = {}
        for i, config in enumerate([today, chosen]):
            log(f"throughput {config.name} at 300 ms")
            row = throughput(bench, config, 300, base + timedelta(minutes=i), args, cursor)
            rates[config] = row["runs_per_s"]
            out(json.dumps({"measure": "throughput", **row}))
        for config in [today, chosen]:
            rate = 0.8 * rates[config]
            log(f"drift {config.name} at {rate:.1f} due/s (80 % of {rates[config]:.1f})")
            out(json.dumps({"measure": "drift", "config": config.name,
                            **drift_at(bench, config, rate, args)}))


def drift_at(bench: Bench, config: Config, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Beat dispatching `rate` runs/s (rounded per phase, using a subset of the automations) to `config`."""
    total = len(bench.automations)
    workers = Workers(bench, config, f"drift-{config.pool}{config.concurrency}")
    try:
        activate(None)
        warm_up(bench, workers, config, datetime.now(UTC) + timedelta(days=3, seconds=1), [0], args.warm, 0.3)
        active = activate(max(1, round(rate)))
        result = beat_window(bench, workers, f"drift-{config.pool}", args.duration)
    finally:
        workers.stop()
    summary = drift_summary(result["rows"], args.warm_s, result["t0"], args.duration)
    return {"target_rate": round(rate, 1), "active_automations": active, "of": total, **summary,
            "pss_peak_mb": round(result["pss_peak_mb"], 1), "worker_cpu_pct": round(result["cpu_pct"], 1),
            "partner_duplicates": result["partner"]["duplicates"],
            "error_lines": error_lines(result["log"])}


def activate(per_phase: int | None) -> int:
    """per_phase automations ACTIVE in every second of the minute (spread over the connections), the others
    paused; None: all ACTIVE. How many are ACTIVE (the heavy one aside)."""
    from sqlalchemy import text

    from models.db import get_engine

    with get_engine().begin() as conn:
        if per_phase is None:
            conn.execute(text("UPDATE automations SET status = 'ACTIVE'"))
        else:
            conn.execute(text("UPDATE automations SET status = 'PAUSED' WHERE code <> 'heavy'"))
            conn.execute(text(
                "UPDATE automations SET status = 'ACTIVE' WHERE id IN (SELECT id FROM (SELECT id, "
                "row_number() OVER (PARTITION BY custom_time ORDER BY id) AS k FROM automations "
                "WHERE code <> 'heavy') s WHERE s.k <= :per)"), {"per": per_phase})
        return int(conn.execute(text("SELECT count(*) FROM automations WHERE status = 'ACTIVE' "
                                     "AND code <> 'heavy'")).scalar_one())


def cmd_mixed(args: argparse.Namespace) -> None:
    """Per config: I/O runs from beat at --rate, one heavy run in the middle; the others' duration/drift."""
    out = Output(args.out or "mixed")
    configs = [Config.parse(c) for c in args.configs.split(",")]
    with bench_env(max(args.per_phase, math.ceil(args.rate)), args.connections, heavy=True) as bench:
        bench.partner.latency(0.3)


        rows = []
        for config in configs:
            log(f"mixed load on {config.name}")
            workers = Workers(bench, config, f"mixed-{config.pool}{config.concurrency}")
            try:
                warm_slot = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
                activate(None)
                _, lost = warm_up(bench, workers, config, warm_slot, [0], args.warm, 0.3)
                activate(math.ceil(args.rate))
                result = beat_window(bench, workers, f"mixed-{config.pool}", args.duration,
                                     heavy_at_s=args.heavy_at)
            finally:
                workers.stop()
            row = {**mixed_summary(config, result, args), "warm_up_unfinished": lost}
            rows.append(row)
            out(json.dumps(row))
    for line in mixed_table(rows):
        out(line)


def mixed_summary(config: Config, result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The other runs before/after the heavy run and while it was in progress."""
    heavy = result["heavy"]
    lo, hi = heavy.get("started_at") or 0.0, heavy.get("finished_at") or 0.0
    rows = [r for r in result["rows"] if r["slot"] >= result["t0"] + args.warm_s and r["start"] is not None]
    during = [r for r in rows if r["finish"] is not None and r["finish"] >= lo and r["start"] <= hi]
    outside = [r for r in rows if r not in during]

    def stats(group: list[dict[str, Any]]) -> dict[str, Any]:
        drift = [r["start"] - r["slot"] for r in group]
        dur = [r["duration_ms"] for r in group if r["duration_ms"] is not None]
        return {"runs": len(group), "drift_p50_s": pct(drift, 50), "drift_p99_s": pct(drift, 99),
                "drift_max_s": round(max(drift), 2) if drift else float("nan"),
                "duration_p50_ms": pct(dur, 50), "duration_p99_ms": pct(dur, 99),
                "duration_max_ms": max(dur) if dur else float("nan")}

    return {"config": config.name, "rate": args.rate, "heavy": heavy,
            "heavy_s": round(hi - lo, 2) if hi and lo else None, "outside": stats(outside),
            "during": stats(during), "not_succeeded": sum(r["status"] != "succeeded" for r in rows),
            "repeated": sum((r["attempts"] or 0) > 1 for r in rows),
            "partner_duplicates": result["partner"]["duplicates"],
            "pss_peak_mb": round(result["pss_peak_mb"], 1), "pss_after_mb": round(result["pss_after_mb"], 1),
            "worker_cpu_pct": round(result["cpu_pct"], 1),
            "error_lines": error_lines(result["log"])}


def mixed_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| config | heavy run (s) | other runs: duration p50 / p99 / max (ms), outside -> during | "
             "drift p99 / max (s), outside -> during | runs during | PSS peak / after (MB) | "
             "failed, repeated |",
             "|---|---:|---|---|---:|---:|---:|"]
    for r in rows:
        o, d = r["outside"], r["during"]
        lines.append(
            f"| {r['config']} | {r['heavy_s']} | {o['duration_p50_ms']:.0f} / {o['duration_p99_ms']:.0f} / "
            f"{o['duration_max_ms']:.0f} -> {d['duration_p50_ms']:.0f} / {d['duration_p99_ms']:.0f} / "
            f"{d['duration_max_ms']:.0f} | {o['drift_p99_s']} / {o['drift_max_s']} -> {d['drift_p99_s']} / "
            f"{d['drift_max_s']} | {d['runs']} | {r['pss_peak_mb']:.0f} / {r['pss_after_mb']:.0f} | "
            f"{r['not_succeeded']}, {r['repeated'] + r['partner_duplicates']} |")
    return lines


# --- gevent: may it be measured here? -------------------------------------------------------------------

GEVENT_CHECK = r'''
from gevent import monkey
monkey.patch_all()  # what `celery -P gevent` does before it imports anything else
import json, os, sys, time
import gevent, psycopg, psycopg.waiting, redis, requests
from sqlalchemy import text
sys.path.insert(0, os.environ["AW_ROOT"])
from models.db import make_engine
PG, RURL, PARTNER, N, SLEEP = os.environ["AW_PG"], os.environ["AW_REDIS"], os.environ["AW_PARTNER"], 20, 0.3
out = {"psycopg_wait": psycopg.waiting.wait.__name__}

def timed(fn):
    began = time.monotonic(); results = [g.get() for g in [gevent.spawn(fn, i) for i in range(N)]]
    return round(time.monotonic() - began, 2), results == list(range(N))

def pg(i):
    with psycopg.connect(PG) as c:
        return c.execute("SELECT %s::int FROM pg_sleep(%s)", (i, SLEEP)).fetchone()[0]
engine = make_engine(PG.replace("postgresql://", "postgresql+psycopg://"), pool_size=N)
def pg_pool(i):
    with engine.connect() as c:
        return c.execute(text("SELECT CAST(:i AS int) FROM pg_sleep(:s)"), {"i": i, "s": SLEEP}).scalar_one()
client = redis.Redis.from_url(RURL, decode_responses=True)
def rd(i):
    client.blpop([f"gevent-empty-{i}"], timeout=SLEEP)  # nothing there: waits SLEEP
    for n in range(50):  # interleaved writes and reads through the shared pool stay each greenlet's own
        client.set(f"gevent-check-{i}", f"{i}:{n}")
        assert client.get(f"gevent-check-{i}") == f"{i}:{n}"
    return i
session = requests.Session()
def http(i):
    return int(session.get(f"{PARTNER}/echo", params={"i": i}, timeout=10).json()["i"])
for name, fn in (("psycopg", pg), ("sqlalchemy_pool", pg_pool), ("redis", rd), ("requests", http)):
    fn(0)
    out[name] = dict(zip(("seconds", "each_got_its_own_answer"), timed(fn)))
print(json.dumps(out))
'''


def cmd_gevent(args: argparse.Namespace) -> None:
    """20 greenlets each wait 0.3 s in PostgreSQL, Redis and a partner call under gevent's monkey patching:
    concurrent means ~0.3 s in all, serialized ~6 s. Then the same with psycopg forced to its C wait (the
    one it picks when it does not see gevent): the negative control."""
    from beat_common import PG_ADMIN, private_redis

    out = Output(getattr(args, "out", None) or "gevent")
    import gevent

    out(f"gevent {gevent.__version__}; 20 greenlets, each waiting 0.3 s (serialized would be 6 s)")
    with private_redis() as redis_url, partner() as the_partner:
        the_partner.latency(0.3)
        pg = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        env = {**os.environ, "AW_ROOT": str(ROOT), "AW_PG": pg, "AW_REDIS": redis_url,
               "AW_PARTNER": the_partner.url}
        for label, extra in (("as celery -P gevent runs it", {}),
                             ("control: psycopg forced to its C wait", {"PSYCOPG_WAIT_FUNC": "wait_c"})):
            done = subprocess.run([sys.executable, "-c", GEVENT_CHECK], env={**env, **extra},
                                  capture_output=True, timeout=120, cwd=ROOT)
            result = done.stdout.decode().strip() or done.stderr.decode()[-2000:]
            out(f"{label}: {result}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("partner", help="(internal) serve the loopback partner")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--heavy", type=int, default=0)
    p = sub.add_parser("table", help="the table of a results file again")
    p.add_argument("kind", choices=["grid", "mixed"])
    p.add_argument("file", type=Path)
    sub.add_parser("gevent", help="may gevent be measured: psycopg, redis-py, requests under monkey patching")
    for name, help_text in (("grid", "runs/s and PSS per latency and pool"),
                            ("targets", "today's default vs the chosen one, drift at 80 %"),
                            ("mixed", "a 200,000-record run among I/O-bound runs")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--connections", type=int, default=8)
        p.add_argument("--per-phase", type=int, default=40, help="automations per second of the minute")
        p.add_argument("--warm", type=int, default=20)
        p.add_argument("--measure-s", type=float, default=12.0)
        p.add_argument("--max-runs", type=int, default=2000)
        p.add_argument("--duration", type=float, default=60.0, help="beat window (s)")
        p.add_argument("--warm-s", type=float, default=10.0, help="first seconds of the beat window left out")
        p.add_argument("--out", help="result file stem after pool_ (default: the command)")
        if name == "grid":
            p.add_argument("--latencies", default="50,300,1000")
            p.add_argument("--configs", default="prefork:2,prefork:8,prefork:16,threads:16,threads:32,"
                           "threads:64,threads:128,threads:32x2,threads:64x2,gevent:64,gevent:128,gevent:256")
        elif name == "targets":
            p.add_argument("--today", default="prefork:2")
            p.add_argument("--default", default="threads:64")
        else:
            p.add_argument("--configs", default="prefork:16,threads:64,gevent:128")
            p.add_argument("--rate", type=float, default=15.0, help="I/O-bound runs due per second")
            p.add_argument("--heavy-at", type=float, default=20.0, help="seconds into the window")
    args = parser.parse_args()
    if args.command == "partner":
        serve_partner(args.port, args.heavy)
        return
    if args.command == "table":
        rows = [json.loads(line) for line in args.file.read_text().splitlines() if line.startswith("{")]
        table = {"grid": grid_table, "mixed": mixed_table}[args.kind]
        print("\n".join(table(rows)))
        return
    handler = {"gevent": cmd_gevent, "grid": cmd_grid, "targets": cmd_targets, "mixed": cmd_mixed}
    handler[args.command](args)


if __name__ == "__main__":
    main()
