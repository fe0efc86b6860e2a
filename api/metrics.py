"""GET /metrics: Prometheus' text format, built at each scrape from where each figure lives.

- Counters and histograms of runs and partner calls live in Redis (tasks/metrics.py): every worker process
  on every host adds to the same hashes at a run's end, so they are totals over all of them and survive
  worker restarts (a Redis that loses its data resets them, which Prometheus' rate() handles as a reset).
- Gauges are computed at the scrape from indexed SQL (automations by status and health, the due backlog,
  deferred runs) and from Redis (beat's last tick, the queue's length): nothing to keep in step. The one
  count whose cost grows with the table (rows per stored health state) is shared for HEALTH_COUNTS_CACHE_S.

The bearer token is required unless METRICS_PUBLIC=true. Labels are bounded: status, trigger, provider,
outcome, health state; never a uuid.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import redis
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models import health_query, keys
from models.automation import ACTIVE
from models.health import PAUSED, A, R
from models.liveness import last_tick_at
from models.run import RunStatus
from tasks.metrics import HISTOGRAMS

PREFIX = "automation_worker_"
HELP = {
    "run_duration_seconds": "Duration of runs that executed (succeeded, failed, below threshold).",
    "run_drift_seconds": "Start of a run minus its slot, for runs that executed.",
    "budget_wait_seconds": "Time a run's delivery waited for its connection's budget.",
}


class OperatorCollector:
    """One scrape: Redis counters and histograms, SQL and Redis gauges (prometheus_client's Collector)."""

    def __init__(self, session: Session, client: redis.Redis, now: datetime, late_after_s: float,
                 cache_s: float = 0.0) -> None:
        self.session, self.client, self.now, self.late_after_s = session, client, now, late_after_s
        self.cache_s = cache_s

    def collect(self) -> Iterator[Metric]:
        """Every family, counters first."""
        yield from self._counters()
        for name in HISTOGRAMS:
            yield self._histogram(name)
        yield from self._gauges()

    def _counters(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(PREFIX + "runs", "Runs finished, by status and trigger.",
                                   labels=["status", "trigger"])
        for field, value in _hash(self.client, keys.METRICS_RUNS):
            status, _, trigger = field.partition("|")
            runs.add_metric([status, trigger], value)
        yield runs
        partner = CounterMetricFamily(PREFIX + "partner_requests", "Calls to integration APIs, by provider "
                                      "and outcome (ok, throttled, error).", labels=["provider", "outcome"])
        for field, value in _hash(self.client, keys.METRICS_PARTNER):
            provider, _, outcome = field.partition("|")
            partner.add_metric([provider, outcome], value)
        yield partner

    def _histogram(self, name: str) -> Metric:
        raw = dict(_hash(self.client, keys.metrics_histogram(name)))
        cumulative, buckets = 0.0, []
        for bound in HISTOGRAMS[name]:
            cumulative += raw.get(repr(float(bound)), 0.0)
            buckets.append((_le(bound), cumulative))
        count = raw.get("count", 0.0)
        buckets.append(("+Inf", count))
        family = HistogramMetricFamily(PREFIX + name, HELP[name])
        family.add_metric([], buckets, sum_value=raw.get("sum", 0.0))
        return family

    def _gauges(self) -> Iterator[Metric]:
        automations = GaugeMetricFamily(PREFIX + "automations", "Automations by status and health state.",
                                        labels=["status", "health"])
        for state, n in health_query.counts(self.session, self.now, self.late_after_s, self.client,
                                            self.cache_s).items():
            automations.add_metric(["PAUSED" if state == PAUSED else ACTIVE, state], n)
        yield automations
        due = select(func.count()).where(A.status == ACTIVE, A.next_run_at <= self.now)
        yield self._gauge("due_backlog", "ACTIVE automations due that beat has not dispatched yet.", due)
        deferred = select(func.count()).where(R.status == RunStatus.DEFERRED)
        yield self._gauge("runs_deferred", "Runs deferred by partner limits, waiting to resume.", deferred)
        running = select(func.count()).where(R.status == RunStatus.RUNNING)
        yield self._gauge("runs_running", "Runs claimed by a worker and not finished.", running)
        yield GaugeMetricFamily(PREFIX + "queue_length", "Run messages waiting in the broker's queue.",
                                value=float(self.client.llen(keys.RUN_QUEUE)))
        tick = last_tick_at(self.client)
        beat = GaugeMetricFamily(PREFIX + "beat_last_tick_timestamp_seconds",
                                 "Unix time of the beat leader's last tick (absent: no leader ever ticked).")
        if tick is not None:
            beat.add_metric([], tick)
        yield beat

    def _gauge(self, name: str, doc: str, stmt: Select[int]) -> Metric:
        """A gauge whose value is one indexed COUNT."""
        return GaugeMetricFamily(PREFIX + name, doc, value=float(self.session.scalar(stmt) or 0))


def _hash(client: redis.Redis, key: str) -> Iterable[tuple[str, float]]:
    """A metrics hash's fields and values, decoded."""
    return ((_text(k), float(v)) for k, v in client.hgetall(key).items())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _le(bound: float) -> str:
    """A bucket's `le` as Prometheus' clients write it (0.5, 1.0, 30.0)."""
    return repr(float(bound))


def exposition(session: Session, client: redis.Redis, now: datetime, late_after_s: float,
               cache_s: float = 0.0) -> bytes:
    """The text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OperatorCollector(session, client, now, late_after_s, cache_s))
    return generate_latest(registry)
