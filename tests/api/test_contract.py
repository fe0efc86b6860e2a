"""The OpenAPI document against the server: Schemathesis, every check, the stateful phase included.

The API runs alone in a uvicorn process on a loopback port, on a database and a Redis database of its
own (dropped afterwards): no worker or beat consumes its queue, since the connections Schemathesis
creates carry arbitrary api_domain hosts and a worker would call them; explain, which fetches from
them, goes through a proxy address on a closed loopback port (a 502). The run is the README's command
with schemathesis.toml (and its hooks), a bounded number of examples and a fixed seed; it must end with
no failure and no warning, and every documented operation must have answered a 2xx at least once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from models import keys
from tests.support.api_alone import api_alone as api_alone_process
from worker.stack.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN, CLIENT_ID, CLIENT_SECRET = "contract-api-token", "contract-client", "contract-client-secret"
SEED = os.environ.get("CONTRACT_SEED", "16")
RUN_TIMEOUT_S = 600


@pytest.fixture()
def api_alone(tmp_path: Path) -> Iterator[str]:
    """uvicorn on a free loopback port, its own database and Redis database, and nothing else."""
    with api_alone_process(tmp_path, API_TOKEN=TOKEN, SECRET_KEY="contract-key", API_CLIENT_ID=CLIENT_ID,
                           API_CLIENT_SECRET=CLIENT_SECRET, **nowhere_proxy()) as (url, redis_url):
        _API_REDIS[url] = redis_url
        yield url


def nowhere_proxy() -> dict[str, str]:
    """Proxy settings that send every call the API makes to an integration API (explain fetches from the
    connection's api_domain, which Schemathesis makes up) to a closed loopback port: refused, a 502."""
    closed = f"http://127.0.0.1:{free_port()}"
    return {"HTTP_PROXY": closed, "HTTPS_PROXY": closed, "http_proxy": closed, "https_proxy": closed,
            "ALL_PROXY": closed, "all_proxy": closed, "NO_PROXY": "", "no_proxy": ""}


def documented_operations(document: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    """`METHOD /path` of every operation, with a pattern matching its concrete URLs' paths."""
    out = {}
    for path, operations in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        out.update({f"{method.upper()} {path}": pattern for method in operations})
    return out


def answered_2xx(har: dict[str, Any], operations: dict[str, re.Pattern[str]]) -> dict[str, int]:
    """How many 2xx answers each documented operation gave in the run."""
    counts = dict.fromkeys(operations, 0)
    for entry in har["log"]["entries"]:
        method, url = entry["request"]["method"], entry["request"]["url"]
        path = re.sub(r"^https?://[^/]+", "", url.split("?")[0])
        for label, pattern in operations.items():
            served = 200 <= entry["response"]["status"] < 300
            if served and label.startswith(f"{method} ") and pattern.match(path):
                counts[label] += 1
    return counts


#: The Redis of each API the `api_alone` fixture started, by its URL.
_API_REDIS: dict[str, str] = {}


@contextlib.contextmanager
def beat_ticking(redis_url: str) -> Iterator[None]:
    """Record a beat leader's tick every second, as a live leader does, until the block ends."""
    client = redis.Redis.from_url(redis_url)
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            client.set(keys.BEAT_LAST_TICK, f"{time.time():.3f}")
            stop.wait(1.0)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        client.delete(keys.BEAT_LAST_TICK)
        client.close()


@pytest.mark.slow
def test_schemathesis_finds_no_mismatch(api_alone: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    env = {**os.environ, "API_TOKEN": TOKEN, "API_CLIENT_ID": CLIENT_ID, "API_CLIENT_SECRET": CLIENT_SECRET,
           "PYTHONPATH": str(ROOT)}
    har = reports / "run.har"
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{api_alone}/openapi.json",
               "--checks", "all", "--seed", SEED, "--report", "har", "--report-har-path", str(har)]
    began = time.monotonic()
    # GET /health/beat answers 200 only while a leader ticks (its 503 is the documented "no")
    with beat_ticking(_API_REDIS[api_alone]):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=RUN_TIMEOUT_S)
    elapsed = time.monotonic() - began
    output = result.stdout + result.stderr
    print(f"schemathesis: {elapsed:.0f} s\n{output[-3000:]}")
    assert result.returncode == 0, output[-20_000:]
    assert "No issues found" in output, output[-5000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated and int(generated.group(1)) >= 1000, output[-3000:]
    assert "Stateful" in output and "Scenarios:" in output
    with urllib.request.urlopen(f"{api_alone}/openapi.json", timeout=5) as resp:
        document = json.loads(resp.read())
    counts = answered_2xx(json.loads(har.read_text()), documented_operations(document))
    assert len(counts) >= 29
    unreached = [label for label, n in counts.items() if n == 0]
    assert not unreached, f"never answered a 2xx: {unreached}"
