"""`make run`'s entry point as a new user runs it: no services, a fresh folder, the demo; Ctrl-C stops all.

Nothing is set, not API_TOKEN nor SECRET_KEY either: `make run` is the one way the API, the worker and beat
start without them (it generates both; tests/worker/test_secrets.py shows each refusing otherwise)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from tests.support.processes import wait_until
from worker.stack.embedded_redis import free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
UNSET = ("DATABASE_URL", "REDIS_URL", "API_TOKEN", "SECRET_KEY", "SANDBOX_URL", "VAR_DIR", "LOG_FORMAT")
HEALTH_TIMEOUT_S = 120
RUN_TIMEOUT_S = 150
STOP_TIMEOUT_S = 15


def entry_point() -> list[str]:
    """The console script `make run` calls (`.venv/bin/automation-worker run`), or the module behind it."""
    script = Path(sys.executable).parent / "automation-worker"
    return [str(script)] if script.exists() else [sys.executable, "-m", "worker.cli.main"]


def get_json(url: str, token: str | None = None) -> Any:
    """GET a JSON body (short timeout)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def try_json(url: str, token: str | None = None) -> Any:
    """The JSON body, or None while the service is not answering."""
    try:
        return get_json(url, token)
    except (OSError, ValueError):
        return None


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`automation-worker run` with nothing set but free ports and a REDIS_URL where nothing listens."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    ports = {"api": free_port(), "flower": free_port(), "dead_redis": free_port()}
    env.update(API_PORT=str(ports["api"]), FLOWER_PORT=str(ports["flower"]), PYTHONUNBUFFERED="1",
               REDIS_URL=f"redis://127.0.0.1:{ports['dead_redis']}/0", FLOWER_UNAUTHENTICATED_API="true")
    var_dir, log_path = tmp_path / "var", tmp_path / "stack.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*entry_point(), "run", "--var-dir", str(var_dir)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    info = {"proc": proc, "var": var_dir, "log": log_path, "api": f"http://127.0.0.1:{ports['api']}",
            "flower": f"http://127.0.0.1:{ports['flower']}"}
    try:
        yield info
    finally:
        _kill_everything(proc)


def _kill_everything(proc: subprocess.Popen[bytes]) -> None:
    """After a failure: SIGKILL the stack and every process below it, by pid."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def poll_for(fetch: Callable[[], T | None], timeout_s: float, interval_s: float) -> T | None:
    """The first truthy value `fetch` returns within `timeout_s`, else None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fetch()
        if value:
            return value
        time.sleep(interval_s)
    return None


def log_text(info: dict[str, Any]) -> str:
    """The stack's whole output so far (the banner scrolls out of the tail under load)."""
    return Path(info["log"]).read_text(errors="replace")


def log_tail(info: dict[str, Any]) -> str:
    """The end of the stack's output, for failure messages."""
    return Path(info["log"]).read_text(errors="replace")[-4000:]


def demo_runs_url(info: dict[str, Any], token: str) -> str:
    """The runs URL of the demo automation, found through the API."""
    connections = get_json(f"{info['api']}/api/v2/integration-connections", token)["integration_connection"]
    conn = next(c for c in connections if c["integration_partner"] == "SANDBOX")
    autos = get_json(f"{info['api']}/api/v3/integration/{conn['uuid']}/automation", token)
    auto = next(a for a in autos["integration_automations"] if a["code"] == "demo-suppliers-every-minute")
    return f"{info['api']}/api/v3/integration/{conn['uuid']}/automation/{auto['uuid']}/runs"


def succeeded_run(url: str, token: str) -> dict[str, Any] | None:
    """The newest succeeded run, if any."""
    body = try_json(url, token)
    runs = body["runs"] if body else []
    return next((r for r in runs if r["status"] == "succeeded"), None)


def flower_task(info: dict[str, Any], run: dict[str, Any]) -> dict[str, Any] | None:
    """The Flower record of the run's task (name, args, result), once Flower has seen it."""
    tasks = try_json(f"{info['flower']}/api/tasks?limit=50") or {}
    return next((t for t in tasks.values() if run["automation_uuid"] in str(t.get("args"))
                 and t.get("state") == "SUCCESS"), None)


@pytest.mark.slow
def test_make_run_demo_succeeds_and_ctrl_c_stops_everything(stack: dict[str, Any]) -> None:
    proc: subprocess.Popen[bytes] = stack["proc"]
    healthy = wait_until(lambda: proc.poll() is not None or try_json(f"{stack['api']}/health"),
                         HEALTH_TIMEOUT_S, 0.5)
    assert healthy and proc.poll() is None, log_tail(stack)
    health = get_json(f"{stack['api']}/health")
    assert {k: health[k] for k in ("status", "database", "redis")} == {"status": "ok", "database": "ok",
                                                                       "redis": "ok"}
    assert health["beat"]["status"] == "ok"  # make run's beat leads and ticks
    # The stack prints its banner once it has seen /health itself: wait for it (bounded), don't race it.
    assert wait_until(lambda: "embedded redis-server" in log_text(stack), 30, 0.5), log_tail(stack)
    assert (stack["var"] / "automation-worker.db").exists()
    token = (stack["var"] / "dev-api-token").read_text().strip()
    assert token in log_text(stack), log_tail(stack)
    assert (stack["var"] / "secret-key").read_text().strip() and "refuses to start" not in log_text(stack)
    url = demo_runs_url(stack, token)
    run = poll_for(lambda: succeeded_run(url, token), RUN_TIMEOUT_S, 2.0)
    assert run is not None, log_tail(stack)
    assert run["records_fetched"] > 0 and run["records_sent"] == run["records_matched"] > 0
    assert get_json(f"{stack['api']}/sandbox/invocations")["count"] > 0
    task = poll_for(lambda: flower_task(stack, run), 20, 1.0)
    assert task is not None and task["name"] == "automations.run"
    assert "'succeeded'" in task["result"] and "records_sent" in task["result"]
    assert_quiet_console(log_text(stack))
    assert_stops_cleanly(stack)


def assert_quiet_console(text: str) -> None:
    """No Celery ASCII banner, the stack's banner after the worker is ready, no sandbox access lines."""
    assert "[queues]" not in text and "celery beat v" not in text, text[:3000]
    assert "-------------- " not in text, text[:3000]
    ready, shown = text.find(" ready."), text.find("automation-worker is running")
    assert 0 <= ready < shown, text[:4000]
    assert not re.search(r'"(GET|POST) /sandbox', text), "sandbox access lines on the console"
    assert re.search(r'"GET /api/v3/integration/[^"]*/runs', text), "the API's own access lines stay"


def assert_stops_cleanly(info: dict[str, Any]) -> None:
    """SIGINT the stack; it and every process it started are gone within STOP_TIMEOUT_S."""
    proc: subprocess.Popen[bytes] = info["proc"]
    root = psutil.Process(proc.pid)
    started = [root, *root.children(recursive=True)]
    names = {p.pid: " ".join(p.cmdline()[:6]) for p in started}
    assert len(started) >= 6, names  # the stack, redis, api, worker (+ pool), beat, flower
    began = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    _, alive = psutil.wait_procs(started, timeout=STOP_TIMEOUT_S)
    elapsed = time.monotonic() - began
    for leftover in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            leftover.kill()
    assert not alive, f"left running: {[names.get(p.pid) for p in alive]}"
    assert proc.wait(timeout=5) == 0, log_tail(info)
    assert elapsed < STOP_TIMEOUT_S and "stopped" in log_tail(info)
