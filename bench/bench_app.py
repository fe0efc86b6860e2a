"""The worker app of bench_runs.py: the real app plus a bare task doing the same HTTP call as a run."""

from __future__ import annotations

import os
from typing import Any

import requests

from worker.celery_app import app

_session = requests.Session()


@app.task(name="bench.bare_invoke")
def bare_invoke(url: str, key: str) -> dict[str, Any]:
    """One POST like a run's invoke, nothing else: the ceiling a run is compared with."""
    resp = _session.post(url, json={"records": [{"id": key}]}, headers={"Idempotency-Key": key}, timeout=30)
    resp.raise_for_status()
    return {"status": "succeeded", "key": key}


@app.task(name="bench.bare_fetch_invoke")
def bare_fetch_invoke(fetch_url: str, invoke_url: str, key: str) -> dict[str, Any]:
    """The two calls a run makes (GET one page of records, POST them), nothing else: the second ceiling."""
    page = _session.get(fetch_url, params={"limit": 100}, timeout=30)
    page.raise_for_status()
    records = page.json()["records"]
    resp = _session.post(invoke_url, json={"records": records}, headers={"Idempotency-Key": key}, timeout=30)
    resp.raise_for_status()
    return {"status": "succeeded", "key": key}


__all__ = ["app"]


def _profile_worker(path: str) -> None:
    """BENCH_CPROFILE=FILE: profile the worker's main process (use --pool solo) until it shuts down."""
    import cProfile

    from celery.signals import worker_ready, worker_shutdown

    profiler = cProfile.Profile()
    worker_ready.connect(lambda **_: profiler.enable(), weak=False)
    worker_shutdown.connect(lambda **_: (profiler.disable(), profiler.dump_stats(path)), weak=False)


if os.environ.get("BENCH_CPROFILE"):
    _profile_worker(os.environ["BENCH_CPROFILE"])
