"""The Celery app, the database-backed beat scheduler and the command line.

`celery -A worker worker` and `celery -A worker beat` find the app here.
"""

# Imported for their signal receivers: LOG_FORMAT and credential redaction for Celery's logs,
# gc.freeze() in the worker's main process before the prefork pool forks, and the refusal to start the
# worker or beat without their secrets.
from worker import logging_hooks, process_hooks, startup  # noqa: F401
from worker.celery_app import app

__all__ = ["app"]
