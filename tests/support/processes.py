"""Real Celery processes for the tests: a beat and workers started as subprocesses, stopped by their pids.

Each process gets its own session (process group) so that stopping it also stops the prefork children it
started, and nothing else. Every wait here is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED_ENV = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "API_TOKEN")
_LOGS: dict[int, Path] = {}


def celery_env(**extra: str) -> dict[str, str]:
    """The environment of a Celery subprocess: this test session's database, Redis and secrets.

    The `database_url` fixture puts DATABASE_URL, REDIS_URL, SECRET_KEY and API_TOKEN in os.environ; the
    Redis URL carries a database index of its own per session, so the `automations` queue is per session.
    """
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"use the database_url fixture first; missing {missing}")
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), LOG_LEVEL=env.get("LOG_LEVEL", "INFO"))
    env.update(extra)
    return env


def start_beat(env: dict[str, str], name: str, log_dir: Path | None = None) -> subprocess.Popen[bytes]:
    """`celery -A worker beat` (the database scheduler is the app's default), logging to `<name>.log`."""
    schedule_file = str(_log_dir(log_dir) / f"{name}-schedule")
    args = ["-A", "worker", "beat", "-l", "INFO", "-n", f"{name}@%h", "-s", schedule_file]
    return _start(args, env, name, log_dir)


def start_worker(
    env: dict[str, str], name: str, concurrency: int = 2, log_dir: Path | None = None, pool: str = "prefork",
    app: str = "worker",
) -> subprocess.Popen[bytes]:
    """`celery -A <app> worker` on the run queue, no gossip/mingle so it is ready in about a second."""
    args = [
        "-A", app, "worker", "-l", "INFO", "-n", f"{name}@%h", "-Q", "automations",
        "-c", str(concurrency), "-P", pool,
        "--without-gossip", "--without-mingle", "-E",
    ]
    return _start(args, env, name, log_dir)


def _start(args: list[str], env: dict[str, str], name: str, log_dir: Path | None) -> subprocess.Popen[bytes]:
    """Spawn `python -m celery <args>` in its own session, output into its log file."""
    path = _log_dir(log_dir) / f"{name}.log"
    with open(path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", *args],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    _LOGS[proc.pid] = path
    return proc


def _log_dir(log_dir: Path | None) -> Path:
    """Where process logs go: the given folder, or a per-user temporary one."""
    path = log_dir or Path(tempfile.gettempdir()) / f"aw-test-logs-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_of(proc: subprocess.Popen[bytes]) -> str:
    """Everything the process has logged so far (for assertions and failure messages)."""
    path = _LOGS.get(proc.pid)
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")


def wait_for_log(proc: subprocess.Popen[bytes], text: str, timeout_s: float = 20.0) -> bool:
    """Wait until the process's log contains `text`; False on timeout or if the process exited."""
    return wait_until(lambda: text in log_of(proc) or proc.poll() is not None, timeout_s) and text in log_of(
        proc
    )


def wait_until(predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate` until truthy or `timeout_s` passed; returns whether it became truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int | None:
    """SIGTERM (warm shutdown) the process and its children, SIGKILL after `timeout_s`; the exit code."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=timeout_s)
    _reap_children(proc)
    return proc.returncode


def kill(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGKILL only the process itself (a crash: no shutdown code runs, its lock is left to expire)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout_s)


def _reap_children(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left in the process's own group (prefork children of a killed worker)."""
    _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group this module created for `proc` (its pgid is its pid), nothing else."""
    try:
        if os.getpgid(proc.pid) != proc.pid:
            os.kill(proc.pid, sig)
            return
    except ProcessLookupError:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
