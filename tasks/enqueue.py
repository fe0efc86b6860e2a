"""Put a run on the queue by task name, so callers (API, beat, chains) need no task import."""

from __future__ import annotations

from datetime import datetime

from models import keys

RUN_TASK = "automations.run"


def enqueue_run(automation_uuid: str, scheduled_for: datetime) -> str:
    """Send `automations.run(automation_uuid, scheduled_for)`; returns the Celery task id.

    The arguments are the automation's UUID and the slot as ISO 8601 (UTC): never a secret.
    """
    from worker.celery_app import app

    result = app.send_task(RUN_TASK, args=[automation_uuid, scheduled_for.isoformat()], queue=keys.RUN_QUEUE)
    return str(result.id)
