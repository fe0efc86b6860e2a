"""Helpers of the fault suite: process control by pid, bounded waits that say what they saw, tallies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.run import FINISHED, Run
from tests.support import processes
from tests.support.integration_server import IntegrationServer

#: Short settings for every process of the suite: redelivery after 10 s, fast retries, small batches.
#: The run lock (3 s) against redelivery (10 s) keeps production's ratio (30 s against 7,200 s): a dead
#: holder's lock expires before the broker brings its message back.
FAULT_ENV = {"VISIBILITY_TIMEOUT_S": "10", "RUN_LOCK_TTL_S": "3", "RESUME_SWEEP_S": "1",
             "RETRY_ATTEMPTS": "4", "RETRY_BASE_S": "0.05", "RETRY_CAP_S": "0.5",
             "HTTP_READ_TIMEOUT_S": "5", "HTTP_CONNECT_TIMEOUT_S": "2",
             "INVOKE_BATCH_SIZE": "2", "LOG_LEVEL": "INFO"}


def fault_env(**extra: str) -> dict[str, str]:
    """The Celery subprocess environment with the suite's short settings (and the test's own)."""
    return processes.celery_env(**{**FAULT_ENV, **extra})


def kill_group(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGKILL the process and the prefork children in its own group (pgid == its pid), as a crash does."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout_s)


def logs(procs: Iterable[subprocess.Popen[bytes]], tail: int = 4000) -> str:
    """The end of every process's log, for assertion messages."""
    return "\n".join(f"--- pid {p.pid}\n{processes.log_of(p)[-tail:]}" for p in procs)


def wait_for(predicate: Callable[[], object], timeout_s: float, explain: Callable[[], str]) -> float:
    """Poll until true within `timeout_s` (bounded), else fail with `explain()`; the seconds it took."""
    began = time.monotonic()
    ok = processes.wait_until(predicate, timeout_s, interval_s=0.1)
    assert ok, f"not within {timeout_s:.0f} s: {explain()}"
    return time.monotonic() - began


def runs_of(db: Session, automation_ids: Iterable[int]) -> list[Run]:
    """The runs of these automations as stored now."""
    db.expire_all()
    ids = list(automation_ids)
    return list(db.scalars(select(Run).where(Run.automation_id.in_(ids)).order_by(Run.id)))


def unfinished(runs: Iterable[Run]) -> list[str]:
    """`automation_id@slot status` of every run not in a final status."""
    return [f"{r.automation_id}@{r.scheduled_for.isoformat()} {r.status}"
            for r in runs if r.status not in FINISHED]


def slots_per_run_row(runs: Iterable[Run]) -> Counter[tuple[int, datetime]]:
    """How many run rows each (automation, slot) has (the unique key makes >1 impossible: checked anyway)."""
    return Counter((r.automation_id, r.scheduled_for) for r in runs)


def applied_by_run(server: IntegrationServer) -> dict[str, list[str]]:
    """Record ids the partner applied, per run uuid (the Idempotency-Key is `<run uuid>:<batch>`)."""
    out: dict[str, list[str]] = defaultdict(list)
    with server.state.lock:
        applied = list(server.state.applied.items())
    for key, inv in applied:
        out[key.split(":", 1)[0]].extend(str(r["id"]) for r in inv.body.get("records", []))
    return dict(out)


def keys_received(server: IntegrationServer) -> Counter[str]:
    """How many times each Idempotency-Key reached the partner (retries and redeliveries included)."""
    return Counter(inv.key or "" for inv in server.invocations())


def log_dir(tmp_path: Path) -> Path:
    """Where this test's process logs go (kept by pytest for a failed test)."""
    path = tmp_path / "logs"
    path.mkdir(exist_ok=True)
    return path


def applied_versions(server: IntegrationServer) -> Counter[tuple[str, str]]:
    """(id, updated_at) of every record version the partner applied, over every Idempotency-Key: a
    version sent twice under different keys counts twice."""
    return Counter((str(r["id"]), str(r.get("updated_at"))) for r in server.sent_records())


class WatermarkWatch:
    """Samples automations' watermarks every 50 ms in a thread; `backwards()` lists any that went back."""

    def __init__(self, engine: Any, automation_ids: Iterable[int]) -> None:
        self.engine = engine
        self.ids = list(automation_ids)
        self.samples: dict[int, list[tuple[int, datetime | None]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watermark-watch", daemon=True)

    def __enter__(self) -> WatermarkWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from models.automation import Automation

        query = select(Automation.id, Automation.watermark_version, Automation.watermark_at).where(
            Automation.id.in_(self.ids))
        while not self._stop.wait(0.05):
            with self.engine.connect() as conn:
                for aid, version, at in conn.execute(query):
                    self.samples[aid].append((version, at))

    def backwards(self) -> list[str]:
        """Every step where a watermark's version or instant decreased."""
        out = []
        for aid, seq in self.samples.items():
            for (v0, a0), (v1, a1) in zip(seq, seq[1:], strict=False):
                if v1 < v0 or (a0 is not None and (a1 is None or a1 < a0)):
                    out.append(f"automation {aid}: ({v0}, {a0}) -> ({v1}, {a1})")
        return out
