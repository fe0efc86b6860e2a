"""Publish many `automations.run` task messages at once: one Redis pipeline per batch.

On a plain Redis broker the run messages' envelopes (tasks/message.py) are pushed onto the queue's list,
which is how beat dispatches ≥ 5,000 slots/s; any other broker uses `send_task`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import redis
from celery import Celery

from tasks.message import RUN_QUEUE, RUN_TASK, Envelopes, RunCall, run_argsrepr

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Publisher(Protocol):
    """Sends one `automations.run` message per (automation, slot); raises if any could not be sent."""

    def publish(self, calls: Sequence[RunCall]) -> list[str]: ...


class SendTaskPublisher:
    """The plain path: `app.send_task` per message (any broker; slower)."""

    def __init__(self, app: Celery, queue: str = RUN_QUEUE) -> None:
        self.app = app
        self.queue = queue

    def publish(self, calls: Sequence[RunCall]) -> list[str]:
        """One send_task per call, on one producer connection."""
        ids: list[str] = []
        with self.app.producer_or_acquire() as producer:
            for call in calls:
                automation_uuid, slot_iso = call[0], call[1]
                label = call[2] if len(call) > 2 else None
                result = self.app.send_task(
                    RUN_TASK, args=[automation_uuid, slot_iso], queue=self.queue, producer=producer,
                    argsrepr=run_argsrepr(automation_uuid, slot_iso, label),
                )
                ids.append(str(result.id))
        return ids


class PipelinePublisher:
    """The fast path: protocol-2 envelopes (tasks/message.py) pushed with one Redis pipeline per batch."""

    def __init__(self, app: Celery, client: redis.Redis, queue: str = RUN_QUEUE) -> None:
        self.client = client
        options = app.conf.broker_transport_options or {}
        self.envelopes = Envelopes(queue, str(options.get("global_keyprefix", "")), str(app.thread_oid))

    def publish(self, calls: Sequence[RunCall]) -> list[str]:
        """Push every message in one pipeline."""
        return self.envelopes.push(self.client, calls)

    def envelope(self, task_id: str, args: list[str]) -> str:
        """One message's envelope (tests compare it with a real send_task message)."""
        return self.envelopes.envelope(task_id, args)


def make_publisher(app: Celery, client: redis.Redis | None, mode: str = "auto") -> Publisher:
    """The pipeline publisher for a plain Redis broker, else (or with mode "send_task") send_task."""
    broker = str(app.conf.broker_url or "")
    if mode == "pipeline" or (mode == "auto" and broker.startswith(REDIS_SCHEMES) and client is not None):
        if client is None:
            raise ValueError("the pipeline publisher needs a Redis client")
        return PipelinePublisher(app, client)
    log.info("beat publishes with send_task (broker %s, mode %s)", broker.split("://", 1)[0], mode)
    return SendTaskPublisher(app)
