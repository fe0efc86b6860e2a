"""Beat's share of the run's promises: abandoned runs are dispatched again, a lone overdue slot is missed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from models import keys
from models.run import Run
from tests.support.beat_support import (
    RecordingPublisher,
    due_automation,
    hour_ahead,
    make_test_beat,
    reload,
    runs_of,
)

S = timedelta(seconds=1)
H = timedelta(hours=1)


@pytest.fixture()
def beat(client: redis.Redis, publisher: RecordingPublisher) -> Iterator[Any]:
    b = make_test_beat(client, publisher, resume_sweep_s=0.2)
    yield b
    b.lock.release()


def _unfinished(db: Session, auto: Any, slot: Any, status: str) -> Run:
    run = Run(automation_id=auto.id, scheduled_for=slot, trigger="schedule", status=status, attempts=1)
    db.add(run)
    db.commit()
    return run


def test_an_abandoned_run_is_dispatched_again_once_its_lock_is_free(
        db: Session, beat: Any, publisher: RecordingPublisher, client: redis.Redis) -> None:
    t = hour_ahead()
    auto = due_automation(db, t + 10 * H)
    older, newer = t - 2 * H, t - H
    _unfinished(db, auto, newer, "running")
    _unfinished(db, auto, older, "deferred")
    client.set(keys.run_lock(auto.uuid), f"{older.isoformat()}|live", px=300)  # its holder is alive
    beat.tick(t)
    assert publisher.calls == []  # nothing is dispatched while the lock is held
    client.delete(keys.run_lock(auto.uuid))  # the holder died and its lock expired
    beat.resume.next_at = 0.0
    beat.tick(t + S)
    assert publisher.calls == [(auto.uuid, older.isoformat())]  # the oldest first, once per automation
    beat.resume.next_at = 0.0
    beat.tick(t + 2 * S)
    assert publisher.calls == [(auto.uuid, older.isoformat())]  # not again while its marker lives
    for run in runs_of(db, auto):
        assert run.status in ("running", "deferred")  # beat never writes a run's outcome


def test_finished_runs_are_not_swept(db: Session, beat: Any, publisher: RecordingPublisher) -> None:
    t = hour_ahead()
    auto = due_automation(db, t + 10 * H)
    for i, status in enumerate(("succeeded", "failed", "queued", "skipped")):
        _unfinished(db, auto, t - (i + 1) * H, status)
    beat.tick(t)
    assert publisher.calls == []


def test_a_lone_slot_older_than_the_grace_window_is_missed_not_run(
        db: Session, beat: Any, publisher: RecordingPublisher) -> None:
    midnight = (hour_ahead() + 24 * H).replace(hour=0)
    auto = due_automation(db, midnight, check_on="daily")
    beat.tick(midnight + 23 * H)  # the daily slot is 23 hours late
    runs = runs_of(db, auto)
    assert [(r.scheduled_for, r.status, r.trigger) for r in runs] == [(midnight, "missed", "schedule")]
    assert "overdue" in (runs[0].reason or "") and "grace" in (runs[0].reason or "")
    assert publisher.calls == []
    assert reload(db, auto).next_run_at == midnight + 24 * H  # the next daily slot


def test_a_lone_slot_within_the_grace_window_still_runs(
        db: Session, beat: Any, publisher: RecordingPublisher) -> None:
    midnight = (hour_ahead() + 24 * H).replace(hour=0)
    auto = due_automation(db, midnight, check_on="daily")
    beat.tick(midnight + 10 * S)
    assert publisher.calls == [(auto.uuid, midnight.isoformat())]


def test_a_deferral_announced_by_the_generation_is_swept_at_its_resume_at(
        db: Session, client: redis.Redis, publisher: RecordingPublisher) -> None:
    from datetime import UTC, datetime

    from models.notify import schedule_changed

    beat = make_test_beat(client, publisher, resume_sweep_s=3600)
    try:
        t = hour_ahead()
        auto = due_automation(db, t + 10 * H)
        beat.tick(t)  # the first sweep: nothing deferred yet; the next periodic one is an hour away
        run = _unfinished(db, auto, t - H, "deferred")
        run.resume_at = datetime.now(UTC) + timedelta(seconds=0.5)
        db.commit()
        schedule_changed(client)  # what a worker does when it defers a run
        beat.tick(t + S)
        assert publisher.calls == [] and beat.resume.next_at - time.monotonic() < 1.0
        time.sleep(0.6)
        beat.tick(t + 2 * S)
        assert publisher.calls == [(auto.uuid, (t - H).isoformat())]
    finally:
        beat.lock.release()
