"""A run's Celery state is its outcome: a run recorded `failed` ends its task in FAILURE, the reason as the
error Flower shows; skipped, below_threshold, deferred and succeeded runs are SUCCESS with the status in the
result.

The failure is raised only after the run row is recorded, as an exception the task declares it throws:
Celery then logs one line without a traceback, does not retry (nothing asks it to), and with acks_late
acknowledges the message on failure (task_acks_on_failure_or_timeout, on by default), so it is not
redelivered.
"""

from __future__ import annotations

from typing import Any

from models.errors import RunFailed
from models.run import RunStatus


def raise_if_failed(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as the task's result, or RunFailed when the run it describes failed."""
    if summary.get("status") == RunStatus.FAILED:
        raise RunFailed(str(summary.get("reason") or "failed"))
    return summary
