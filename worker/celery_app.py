"""The Celery app: Redis broker and backend, JSON only, late acks, events on for Flower.

Beat's default scheduler is the database-backed one (worker.beat.scheduler.DatabaseScheduler), so a plain
`celery -A worker beat` uses it.
"""

from __future__ import annotations

from celery import Celery

import models.tables  # noqa: F401  (every mapper registered before a task or beat touches the ORM)
from models import keys
from models.settings import Settings, get_settings
from worker import redis_transport


def broker_transport_options(s: Settings) -> dict[str, int]:
    """Redelivery of unacknowledged tasks: after the visibility timeout, swept at least every 10 s.

    kombu sweeps every `unacked_restore_interval * unacked_restore_throttle` s (100 s by default), which
    would hide a short VISIBILITY_TIMEOUT_S; throttle 1 makes the interval the period.
    """
    return {"visibility_timeout": s.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, s.visibility_timeout_s // 5)),
            "unacked_restore_throttle": 1}


def make_app(settings: Settings | None = None) -> Celery:
    """Build the app from the settings; the one place Celery is configured."""
    s = settings or get_settings()
    app = Celery("automation_worker", broker=s.redis_url, backend=s.redis_url, include=["tasks.run"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_send_sent_event=True,
        worker_send_task_events=True,
        # No STARTED state in the result backend: Flower shows it from the task-started event and the run
        # row says `running`; storing it cost every task one more Redis transaction.
        task_track_started=False,
        task_default_queue=keys.RUN_QUEUE,
        result_expires=s.result_expires_s,  # the run row is the record; Flower reads events
        broker_transport_options=broker_transport_options(s),
        broker_transport=redis_transport.transport_for(s.redis_url),
        result_backend_transport_options={"visibility_timeout": s.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        beat_scheduler="worker.beat.scheduler:DatabaseScheduler",
        beat_max_loop_interval=s.beat_tick_s,
        timezone="UTC",
        enable_utc=True,
    )
    return app


app = make_app()
