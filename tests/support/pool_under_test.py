"""A pytest plugin: every Celery worker the tests start uses the pool AW_TEST_WORKER_POOL names.

The run tests and the fault suite start their workers through
`tests.support.processes.start_worker`, most of them
with the prefork pool. Under this plugin they all get the product's default pool instead (issue 17), the
SIGKILLs of the fault suite included, without changing the tests:

    AW_TEST_WORKER_POOL=threads .venv/bin/python -m pytest -p tests.support.pool_under_test tests/faults

AW_TEST_WORKER_CONCURRENCY, when set, replaces each test's concurrency too (else each keeps its own: some
fault tests need a worker that runs exactly one task at a time).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import processes

_ORIGINAL = processes.start_worker


def pytest_configure(config: pytest.Config) -> None:
    """Swap the helper when AW_TEST_WORKER_POOL is set, and say so in the header."""
    chosen = os.environ.get("AW_TEST_WORKER_POOL")
    if not chosen:
        return
    size = os.environ.get("AW_TEST_WORKER_CONCURRENCY")

    def start_worker(env: dict[str, str], name: str, concurrency: int = 2, log_dir: Path | None = None,
                     pool: str = "prefork", app: str = "worker") -> Any:
        """tests.support.processes.start_worker with the chosen pool (the test's own `pool` is not used)."""
        return _ORIGINAL(env, name, int(size) if size else concurrency, log_dir, pool=chosen, app=app)

    processes.start_worker = start_worker  # type: ignore[assignment]


def pytest_report_header(config: pytest.Config) -> str | None:
    pool = os.environ.get("AW_TEST_WORKER_POOL")
    if not pool:
        return None
    size = os.environ.get("AW_TEST_WORKER_CONCURRENCY") or "each test's own"
    return f"every started worker: -P {pool}, -c {size} (tests.support.pool_under_test)"
