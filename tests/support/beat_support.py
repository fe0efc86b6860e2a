"""Helpers shared by the beat tests: due automations, a recording publisher, Redis clean-up."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import keys
from models.automation import Automation
from models.connection import Connection
from models.run import Run
from models.settings import Settings, get_settings
from tasks.message import RunCall
from tests.support.factories import make_automation, make_connection
from worker.beat.scheduler import Beat

_codes = itertools.count()
BEAT_KEYS = (keys.BEAT_LEADER_LOCK, keys.SCHEDULE_GENERATION, keys.RUN_QUEUE)


class RecordingPublisher:
    """Remembers what beat published, so a unit test can assert on it without a broker."""

    def __init__(self) -> None:
        self.calls: list[RunCall] = []
        self.labels: list[str | None] = []  # the automation's code beside each call (shown in Flower)
        self.fail_next = False

    def publish(self, calls: Sequence[RunCall]) -> list[str]:
        if self.fail_next:
            self.fail_next = False
            raise redis.ConnectionError("simulated publish failure")
        self.calls.extend((c[0], c[1]) for c in calls)
        self.labels.extend(c[2] if len(c) > 2 else None for c in calls)
        return [f"id-{len(self.calls)}-{i}" for i in range(len(calls))]


def hour_ahead() -> datetime:
    """An hour boundary in the future: slots of '1 hour'/'1 minute' schedules fall on it."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)


def due_automation(db: Session, next_run_at: datetime, connection: Connection | None = None,
                   **fields: Any) -> Automation:
    """A committed ACTIVE automation with the given next_run_at (default schedule: every hour)."""
    conn = connection or make_connection(db)
    n = next(_codes)
    fields.setdefault("check_on", "1 hour")
    auto = make_automation(db, conn, next_run_at=next_run_at, code=f"auto-{n}", name=f"Auto {n}", **fields)
    db.commit()
    return auto


def reload(db: Session, auto: Automation) -> Automation:
    """The automation as stored now (beat writes through its own connection)."""
    db.expire_all()
    return db.scalars(select(Automation).where(Automation.id == auto.id)).one()


def runs_of(db: Session, auto: Automation) -> list[Run]:
    """The automation's runs, oldest slot first."""
    db.expire_all()
    return list(db.scalars(select(Run).where(Run.automation_id == auto.id).order_by(Run.scheduled_for)))


def clean_redis(client: redis.Redis) -> None:
    """Delete the keys beat uses, so tests never share leadership, generation or queued messages."""
    client.delete(*BEAT_KEYS)


def make_test_beat(client: redis.Redis, publisher: Any, beat_id: str = "test-beat", **overrides: Any) -> Beat:
    """A Beat on the test database with settings overridden (batch size, grace, ...)."""
    from models.db import get_engine

    settings: Settings = get_settings().model_copy(update=overrides)
    return Beat(get_engine(), client, publisher, settings, beat_id=beat_id)
