"""Put a run on the queue: its message (tasks/message.py) pushed onto the broker's Redis, so whoever
enqueues (the API, the command line, a chain) needs neither the Celery app nor the task."""

from __future__ import annotations

from datetime import datetime

import redis

from models.redis_clients import redis_client
from tasks.message import Envelopes, run_call

_ENVELOPES = Envelopes()


def enqueue_run(automation_uuid: str, scheduled_for: datetime, client: redis.Redis | None = None,
                label: str | None = None) -> str:
    """Send `automations.run(automation_uuid, scheduled_for)` on `client` (the process's Redis when None);
    returns the Celery task id. A Redis that does not answer raises redis.RedisError at once. `label` (the
    automation's code) is shown beside the arguments in Flower."""
    return _ENVELOPES.push(client or redis_client(), [run_call(automation_uuid, scheduled_for, label)])[0]
