"""Run metrics kept in Redis: counters and histogram buckets incremented at each run's end.

Every worker process (prefork children, threads, other hosts) increments the same hashes with HINCRBY in
one pipelined round trip per run end, so the figures are the sum over all of them and survive a worker's
restart; the API's /metrics reads them back (api/metrics.py). A histogram's hash holds one field per bucket
(not cumulative: the reader sums them), plus `sum` and `count`. Metrics are a view: a Redis error is
logged, never fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from models import keys
from models.redis_clients import redis_client
from models.run import RunStatus, Trigger

if TYPE_CHECKING:
    from tasks.budget import Usage
    from tasks.run_state import RunState

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the histograms' buckets; +Inf is implied.
HISTOGRAMS: dict[str, tuple[float, ...]] = {
    "run_duration_seconds": (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    "run_drift_seconds": (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    "budget_wait_seconds": (0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
}
#: Runs that executed (a drift and a duration mean something for them).
EXECUTED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.BELOW_THRESHOLD})
PARTNER_OUTCOMES = ("ok", "throttled", "error")


def bucket_of(value: float, bounds: Sequence[float]) -> str:
    """The field of the smallest bucket holding `value` ("+Inf" beyond the last bound)."""
    for bound in bounds:
        if value <= bound:
            return repr(float(bound))
    return "+Inf"


def observe(pipe: redis.client.Pipeline, name: str, value: float) -> None:
    """One observation of histogram `name`, queued on the pipeline."""
    key = keys.metrics_histogram(name)
    pipe.hincrby(key, bucket_of(value, HISTOGRAMS[name]), 1)
    pipe.hincrbyfloat(key, "sum", value)
    pipe.hincrby(key, "count", 1)


def record_run_end(state: RunState, usage: Usage | None, client: redis.Redis | None = None) -> None:
    """Count a delivery's end: the run by status and trigger when it finished, its duration and drift when
    it executed, the budget wait and the partner calls of this delivery (a deferred one too)."""
    try:
        with (client or redis_client()).pipeline(transaction=False) as pipe:
            _queue_run(pipe, state)
            if usage is not None:
                _queue_usage(pipe, usage)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("run %s: metrics not recorded (%s)", state.uuid, type(exc).__name__)


def count_runs(counts: dict[tuple[str, str], int], client: redis.Redis | None = None) -> None:
    """Count finished runs recorded outside a worker (beat's `missed` ones) by (status, trigger)."""
    try:
        with (client or redis_client()).pipeline(transaction=False) as pipe:
            for (status, trigger), n in counts.items():
                pipe.hincrby(keys.METRICS_RUNS, f"{status}|{trigger}", n)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("%d run(s) not counted in the metrics (%s)", sum(counts.values()), type(exc).__name__)


def _queue_run(pipe: redis.client.Pipeline, state: RunState) -> None:
    """The run's counter and, for a run that executed, its duration and drift."""
    if not state.finished:
        return
    pipe.hincrby(keys.METRICS_RUNS, f"{state.status}|{state.trigger or Trigger.SCHEDULE}", 1)
    if state.status in EXECUTED:
        if state.duration_ms is not None:
            observe(pipe, "run_duration_seconds", state.duration_ms / 1000)
        if state.started_at is not None:
            observe(pipe, "run_drift_seconds",
                    max(0.0, (state.started_at - state.scheduled_for).total_seconds()))


def _queue_usage(pipe: redis.client.Pipeline, usage: Usage) -> None:
    """The delivery's budget wait and its partner calls by outcome."""
    observe(pipe, "budget_wait_seconds", usage.wait_s)
    provider = usage.provider or "unknown"
    for outcome, n in zip(PARTNER_OUTCOMES, (usage.ok, usage.throttled, usage.errors), strict=True):
        if n:
            pipe.hincrby(keys.METRICS_PARTNER, f"{provider}|{outcome}", n)
