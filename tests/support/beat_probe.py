"""A Celery app for beat's process tests: a stand-in `automations.run` that records what it received.

`celery -A tests.support.beat_probe worker` runs it with the product's configuration, so a test can see
exactly which (automation, slot) messages a real worker executed, whichever way beat published them.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import redis

from models.settings import get_settings
from worker.celery_app import make_app

PROBE_KEY = "aw:test:beat-probe"

app = make_app()
app.conf.include = []


@app.task(name="automations.run", bind=True, shared=False)  # never leak into the product app
def run(self: Any, automation_uuid: str, scheduled_for: str) -> str:
    """Record the delivery (args, ids, the time the worker started it) in a Redis list."""
    record = {"automation_uuid": automation_uuid, "scheduled_for": scheduled_for, "task_id": self.request.id,
              "argsrepr": self.request.argsrepr, "started_at": time.time(),
              "delivery_info": self.request.delivery_info}
    _client().rpush(PROBE_KEY, json.dumps(record))
    return automation_uuid


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    """One client per worker process (the drift benchmark runs thousands of these a second)."""
    return redis.Redis.from_url(get_settings().redis_url)


def received(client: redis.Redis) -> list[dict[str, Any]]:
    """Everything the probe task recorded so far."""
    return [json.loads(raw) for raw in client.lrange(PROBE_KEY, 0, -1)]
