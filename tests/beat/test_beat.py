"""Beat's tick against the real test database and Redis: due selection, advance, catch-up, jitter, idle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from models import keys
from models.automation import PAUSED
from models.db import get_engine
from models.notify import schedule_changed
from models.scheduling import jitter_offset
from tests.support.beat_support import (
    RecordingPublisher,
    due_automation,
    hour_ahead,
    make_test_beat,
    reload,
    runs_of,
)

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


@pytest.fixture()
def beat(client: redis.Redis, publisher: RecordingPublisher) -> Any:
    b = make_test_beat(client, publisher)
    yield b
    b.lock.release()


def test_due_automation_is_dispatched_once_and_advanced(db: Session, beat: Any, publisher: Any) -> None:
    t = hour_ahead()
    auto = due_automation(db, t)
    beat.tick(t + 5 * S)
    beat.tick(t + 6 * S)
    assert publisher.calls == [(auto.uuid, t.isoformat())]
    stored = reload(db, auto)
    assert (stored.next_run_at, stored.last_run_at) == (t + H, t)
    assert runs_of(db, auto) == []  # the run task creates the run row of a scheduled slot


def test_not_due_and_paused_are_not_dispatched(db: Session, beat: Any, publisher: Any) -> None:
    t = hour_ahead()
    later = due_automation(db, t + H)
    paused = due_automation(db, t, status=PAUSED)
    beat.tick(t + 5 * S)
    assert publisher.calls == []
    assert reload(db, later).next_run_at == t + H and reload(db, paused).next_run_at == t


def test_batches_loop_until_none_is_due(db: Session, client: Any, publisher: Any) -> None:
    t = hour_ahead()
    autos = [due_automation(db, t - i * S) for i in range(7)]
    beat = make_test_beat(client, publisher, beat_batch_size=3)
    beat.tick(t + S)
    assert sorted(u for u, _ in publisher.calls) == sorted(a.uuid for a in autos)
    assert publisher.calls[0][0] == autos[-1].uuid  # oldest next_run_at first


def test_catch_up_within_grace_coalesces_into_one_run(db: Session, beat: Any, publisher: Any) -> None:
    t = hour_ahead()
    auto = due_automation(db, t - 10 * MIN, check_on="1 minute")
    beat.tick(t + 5 * S)
    assert publisher.calls == [(auto.uuid, t.isoformat())]
    runs = runs_of(db, auto)
    assert [(r.scheduled_for, r.trigger, r.status) for r in runs] == [(t, "catch_up", "queued")]
    assert "11 slot(s)" in (runs[0].reason or "")
    assert reload(db, auto).next_run_at == t + MIN


def test_slots_older_than_grace_are_recorded_missed(db: Session, beat: Any, publisher: Any,
                                                    client: redis.Redis) -> None:
    t = hour_ahead()
    auto = due_automation(db, t - 5 * H)
    client.hdel(keys.METRICS_RUNS, "missed|schedule")
    beat.tick(t + 5 * S)
    assert int(client.hget(keys.METRICS_RUNS, "missed|schedule") or 0) == 5  # counted in runs_total
    runs = runs_of(db, auto)
    missed = [r.scheduled_for for r in runs if r.status == "missed"]
    assert missed == [t - 5 * H, t - 4 * H, t - 3 * H, t - 2 * H, t - H]
    assert all("grace" in (r.reason or "") and r.finished_at for r in runs if r.status == "missed")
    assert [(r.scheduled_for, r.trigger) for r in runs if r.status == "queued"] == [(t, "catch_up")]
    assert publisher.calls == [(auto.uuid, t.isoformat())]
    assert reload(db, auto).next_run_at == t + H


def test_missed_rows_are_bounded_after_a_long_outage(db: Session, beat: Any, publisher: Any) -> None:
    t = hour_ahead()
    auto = due_automation(db, t - timedelta(days=10), check_on="1 minute")
    beat.tick(t + 5 * S)
    missed = [r for r in runs_of(db, auto) if r.status == "missed"]
    assert len(missed) == 100
    assert "not recorded one by one" in (missed[-1].reason or "")
    assert publisher.calls == [(auto.uuid, t.isoformat())]
    assert reload(db, auto).next_run_at == t + MIN


def test_catch_up_insert_conflict_does_not_fail_the_tick(db: Session, beat: Any, publisher: Any) -> None:
    from models.run import Run

    t = hour_ahead()
    auto = due_automation(db, t - 3 * H)
    db.add(Run(automation_id=auto.id, scheduled_for=t - 3 * H, status="succeeded"))
    db.commit()
    beat.tick(t + 5 * S)
    statuses = [(r.scheduled_for, r.status) for r in runs_of(db, auto)]
    assert statuses[0] == (t - 3 * H, "succeeded")  # left alone
    assert publisher.calls == [(auto.uuid, t.isoformat())]


def test_jitter_shifts_dispatch_not_the_slot(db: Session, beat: Any, publisher: Any) -> None:
    t = hour_ahead()
    probe = due_automation(db, t + H, check_on="1 minute", jitter_s=10_000)
    offset = jitter_offset(probe.uuid, 10_000, 1)
    assert timedelta(0) <= offset < MIN  # capped below the interval
    probe.next_run_at = t + offset
    db.commit()
    beat.tick(t + offset - 0.5 * S)
    assert publisher.calls == []
    beat.tick(t + offset + 0.5 * S)
    assert publisher.calls == [(probe.uuid, t.isoformat())]
    assert reload(db, probe).next_run_at == t + MIN + offset


def _count_queries() -> tuple[list[str], Any]:
    seen: list[str] = []

    def on_execute(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(get_engine(), "before_cursor_execute", on_execute)
    return seen, on_execute


def test_idle_tick_touches_no_database_and_one_redis_round_trip(db: Session, beat: Any, client: Any) -> None:
    t = hour_ahead()
    due_automation(db, t + H)
    beat.tick(t)  # first tick as leader reads the earliest due time
    seen, listener = _count_queries()
    commands: list[str] = []
    original = client.execute_command
    client.execute_command = lambda *a, **k: commands.append(a[0]) or original(*a, **k)
    try:
        for i in range(5):
            assert beat.tick(t + i * S) > 0
    finally:
        event.remove(get_engine(), "before_cursor_execute", listener)
        client.execute_command = original
    assert seen == []
    assert commands == ["EVALSHA"] * 5


def test_schedule_generation_makes_the_next_tick_see_changes(db: Session, beat: Any, client: Any,
                                                             publisher: Any) -> None:
    t = hour_ahead()
    due_automation(db, t + H)
    beat.tick(t)
    auto = due_automation(db, t)  # written without telling beat: the cache says nothing is due
    beat.tick(t + S)
    assert publisher.calls == []
    schedule_changed(client)
    beat.tick(t + 2 * S)
    assert publisher.calls == [(auto.uuid, t.isoformat())]


def test_earliest_is_reread_every_minute_without_a_generation_bump(db: Session, beat: Any,
                                                                   publisher: Any) -> None:
    t = hour_ahead()
    due_automation(db, t + H)
    beat.tick(t)
    auto = due_automation(db, t)
    beat.read_at -= 61
    beat.tick(t + S)
    assert publisher.calls == [(auto.uuid, t.isoformat())]


def test_publish_failure_rolls_back_and_the_slot_stays_due(db: Session, beat: Any, publisher: Any) -> None:
    t = hour_ahead()
    auto = due_automation(db, t - 3 * H)
    publisher.fail_next = True
    assert beat.tick(t + S) == beat.tick_s  # error logged, not raised
    assert reload(db, auto).next_run_at == t - 3 * H
    assert runs_of(db, auto) == []  # the catch-up rows rolled back with it
    beat.tick(t + 2 * S)
    assert publisher.calls == [(auto.uuid, t.isoformat())]


def test_a_next_run_at_written_in_another_text_form_still_advances(db: Session, beat: Any,
                                                                     publisher: Any) -> None:
    """A row written by hand (naive text, no fractional seconds) is dispatched once, not every tick."""
    from sqlalchemy import text

    t = hour_ahead().replace(microsecond=0)
    auto = due_automation(db, t)
    db.execute(text("UPDATE automations SET next_run_at = :v WHERE id = :id"),
               {"v": t.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S"), "id": auto.id})
    db.commit()
    for second in (5, 6, 7):
        beat.tick(t + second * S)
    assert publisher.calls == [(auto.uuid, t.isoformat())]
    assert reload(db, auto).next_run_at == t + H
