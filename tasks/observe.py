"""What an operator sees of a run's end: its automation's health (on the row) and the metrics (in Redis).

One call from wherever a run's delivery ends (finished or deferred), so the run's owner stays one line.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tasks import health, metrics

if TYPE_CHECKING:
    from tasks.budget import Usage
    from tasks.run_state import RunState


def run_ended(automation_id: int, slot: datetime, state: RunState, usage: Usage | None = None) -> None:
    """Store the health a finished run decides and count the delivery in the metrics."""
    if state.finished:
        health.run_ended(automation_id, slot, state.status, state.reason)
    metrics.record_run_end(state, usage)
