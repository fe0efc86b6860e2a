"""The worker app of bench_runs.py: the real app plus a bare task doing the same HTTP call as a run."""

from __future__ import annotations

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


__all__ = ["app"]
