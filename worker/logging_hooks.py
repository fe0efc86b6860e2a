"""Celery's log handlers get LOG_FORMAT and the credential filter (connected when `worker` is imported)."""

from __future__ import annotations

import logging
from typing import Any

from celery._state import get_current_task
from celery.signals import after_setup_logger, after_setup_task_logger

from models.logging_setup import prepare_handler


class TaskIds(logging.Filter):
    """Put the current task's name and id on each record, so JSON lines carry them as fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add task_name/task_id when a task is running (Celery's text format shows them itself)."""
        task = get_current_task()
        if task is not None and task.request.id and not hasattr(record, "task_id"):
            record.task_id = task.request.id
            record.task_name = task.name
        return True


@after_setup_logger.connect
@after_setup_task_logger.connect
def _format_celery_handlers(logger: logging.Logger | None = None, **_: Any) -> None:
    """Celery keeps its level (-l) and its text format; JSON and the redaction filter are ours."""
    if logger is None:
        return
    for handler in logger.handlers:
        if not any(isinstance(f, TaskIds) for f in handler.filters):
            handler.addFilter(TaskIds())
        prepare_handler(handler, keep_text=True)
