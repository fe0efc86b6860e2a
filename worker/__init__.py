"""The Celery app, the database-backed beat scheduler and the command line.

`celery -A worker worker` and `celery -A worker beat` find the app here.
"""

# Imported for their signal receivers: LOG_FORMAT and credential redaction for Celery's logs, and
# gc.freeze() in the worker's main process before the prefork pool forks.
from worker import logging_hooks, process_hooks  # noqa: F401
from worker.celery_app import app

__all__ = ["app"]
