"""One configuration for every command of a checkout: `make run` records the settings it chose under var/,
and the CLI in a second shell with nothing exported uses them: it imports a sandbox automation (encrypted
with the stack's SECRET_KEY), triggers it on the stack's Redis, and the stack's worker runs it to success."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.test_stack import (
    HEALTH_TIMEOUT_S,
    UNSET,
    _kill_everything,
    assert_stops_cleanly,
    entry_point,
    log_tail,
    log_text,
    poll_for,
    try_json,
)
from tests.support.processes import wait_until
from worker.stack.demo import demo_bundle
from worker.stack.embedded_redis import free_port

CODE = "second-shell-suppliers"
#: Nothing a second shell would have exported: no settings at all.
NOTHING = (*UNSET, "API_PORT", "FLOWER_PORT", "API_CLIENT_ID", "API_CLIENT_SECRET")


@pytest.fixture()
def stack_here(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`automation-worker run` started in tmp_path (its var/ is tmp_path/var), nothing set but free ports
    and a REDIS_URL where nothing listens (so the embedded Redis is on that port)."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    ports = {"api": free_port(), "flower": free_port()}
    env.update(API_PORT=str(ports["api"]), FLOWER_PORT=str(ports["flower"]), PYTHONUNBUFFERED="1",
               REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", FLOWER_UNAUTHENTICATED_API="true")
    log_path = tmp_path / "stack.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*entry_point(), "run"], cwd=tmp_path, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    info = {"proc": proc, "var": tmp_path / "var", "log": log_path, "api": f"http://127.0.0.1:{ports['api']}",
            "cwd": tmp_path}
    try:
        yield info
    finally:
        _kill_everything(proc)


def second_shell(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command in another shell of the same checkout: nothing exported."""
    env = {k: v for k, v in os.environ.items() if k not in NOTHING}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def bundle() -> dict[str, Any]:
    """A sandbox connection and an automation of its own (not the demo's), run only when triggered."""
    doc = demo_bundle()
    doc["connection"].update(remote_instance_id="second-shell", remote_instance_name="Second shell",
                             integration_access_token="second-shell-token")
    details = doc["automations"][0]["integration"]["automation_details"]
    details.update(code=CODE, name="Second shell: suppliers", check_on="1 day")
    return doc


@pytest.mark.slow
def test_cli_in_a_second_shell_uses_the_stacks_settings(stack_here: dict[str, Any]) -> None:
    info, cwd = stack_here, stack_here["cwd"]
    proc: subprocess.Popen[bytes] = info["proc"]
    assert wait_until(lambda: proc.poll() is not None or "automation-worker is running" in log_text(info),
                      HEALTH_TIMEOUT_S, 0.5) and proc.poll() is None, log_tail(info)
    recorded = (info["var"] / "stack.env").read_text()
    secret = (info["var"] / "secret-key").read_text().strip()
    assert f"SECRET_KEY='{secret}'" in recorded and "REDIS_URL=" in recorded and "DATABASE_URL=" in recorded
    assert oct((info["var"] / "stack.env").stat().st_mode & 0o777) == "0o600"
    assert f"recorded in {info['var'] / 'stack.env'}" in log_text(info)
    assert f"commands started in {cwd}" in log_text(info)

    script = [str(Path(sys.executable).parent / "automation-worker")]
    (cwd / "bundle.json").write_text(json.dumps(bundle()))
    imported = second_shell(cwd, *script, "import", "bundle.json")
    assert imported.returncode == 0, imported.stderr
    triggered = second_shell(cwd, *script, "trigger", CODE)
    assert triggered.returncode == 0 and "queued manual run" in triggered.stdout, triggered.stderr

    def succeeded() -> dict[str, Any] | None:
        listed = second_shell(cwd, *script, "runs", "list", CODE, "--json")
        runs = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        done = [r for r in runs if r["status"] not in ("queued", "running")]
        return done[0] if done else None

    run = poll_for(succeeded, 60, 1.0)
    assert run is not None and run["status"] == "succeeded", (run, log_tail(info))
    assert run["records_sent"] > 0
    sent = try_json(f"{info['api']}/sandbox/invocations")
    assert sent and sent["count"] > 0

    # celery -A worker from the same checkout reaches the stack's broker and its worker.
    pong = second_shell(cwd, sys.executable, "-m", "celery", "-A", "worker", "inspect", "ping", "-t", "5")
    assert pong.returncode == 0 and "pong" in pong.stdout, pong.stdout + pong.stderr
    assert_stops_cleanly(info)
