"""The Celery app, the database-backed beat scheduler and the command line.

`celery -A worker worker` and `celery -A worker beat` find the app here.
"""

from worker import logging_hooks  # noqa: F401  (LOG_FORMAT and credential redaction for Celery's logs)
from worker.celery_app import app

__all__ = ["app"]
