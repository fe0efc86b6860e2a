"""Real `celery -A worker beat` processes with a real worker: dispatch, no duplicates, leader failover."""

from __future__ import annotations

import importlib.util
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.notify import schedule_changed
from models.run import Run
from tests.support import beat_probe, processes
from tests.support.beat_support import due_automation, reload
from tests.support.factories import make_connection

pytestmark = pytest.mark.slow
PROBE_APP = "tests.support.beat_probe"


@pytest.fixture()
def started(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; all stopped (by pid) afterwards, whatever happened."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        processes.stop(proc)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _beat(procs: list[subprocess.Popen[bytes]], name: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    proc = processes.start_beat(processes.celery_env(), name, tmp_path)
    procs.append(proc)
    assert processes.wait_for_log(proc, "database scheduler ready", 20), processes.log_of(proc)
    return proc


def _probe_worker(procs: list[subprocess.Popen[bytes]], tmp_path: Path) -> None:
    proc = processes.start_worker(processes.celery_env(), "probe", 2, tmp_path, app=PROBE_APP)
    procs.append(proc)


def _received_uuids(client: redis.Redis) -> Counter[str]:
    return Counter(r["automation_uuid"] for r in beat_probe.received(client))


def test_beat_process_dispatches_a_due_automation_to_a_worker(db: Session, client: redis.Redis,
                                                              started: list, tmp_path: Path) -> None:
    slot = _now()
    auto = due_automation(db, slot)
    _probe_worker(started, tmp_path)
    beat = _beat(started, "beat-one", tmp_path)
    assert processes.wait_until(lambda: _received_uuids(client)[auto.uuid], 20), processes.log_of(beat)
    record = beat_probe.received(client)[0]
    assert record["scheduled_for"] == slot.isoformat()
    assert reload(db, auto).next_run_at > slot


@pytest.mark.skipif(importlib.util.find_spec("tasks.run") is None, reason="tasks.run not there yet")
def test_beat_process_and_the_real_run_task_create_the_run(db: Session, client: redis.Redis,
                                                           started: list, tmp_path: Path) -> None:
    slot = _now()
    auto = due_automation(db, slot)
    started.append(processes.start_worker(processes.celery_env(), "real", 2, tmp_path))
    beat = _beat(started, "beat-real", tmp_path)

    def run_row() -> Run | None:
        db.expire_all()
        return db.scalars(select(Run).where(Run.automation_id == auto.id)).first()

    assert processes.wait_until(run_row, 30), processes.log_of(beat) + processes.log_of(started[0])
    assert run_row().scheduled_for == slot  # type: ignore[union-attr]


def test_two_beats_dispatch_each_slot_once(db: Session, client: redis.Redis, started: list,
                                           tmp_path: Path) -> None:
    beats = [_beat(started, f"beat-{i}", tmp_path) for i in range(2)]
    _probe_worker(started, tmp_path)
    conn = make_connection(db)
    autos = [due_automation(db, _now(), connection=conn) for _ in range(30)]
    schedule_changed(client)
    done = processes.wait_until(lambda: len(_received_uuids(client)) == 30, 20)
    assert done, "".join(processes.log_of(b) for b in beats)
    time.sleep(2)  # a duplicate would arrive within a tick or two
    counts = _received_uuids(client)
    assert set(counts) == {a.uuid for a in autos} and set(counts.values()) == {1}
    leaders = [b for b in beats if "became leader" in processes.log_of(b)]
    assert len(leaders) == 1


def test_standby_dispatches_within_10_s_after_the_leader_is_killed(db: Session, client: redis.Redis,
                                                                    started: list, tmp_path: Path) -> None:
    leader = _beat(started, "beat-leader", tmp_path)
    assert processes.wait_for_log(leader, "became leader", 10), processes.log_of(leader)
    standby = _beat(started, "beat-standby", tmp_path)
    _probe_worker(started, tmp_path)
    processes.kill(leader)
    killed_at = time.monotonic()
    auto = due_automation(db, _now())
    schedule_changed(client)
    assert processes.wait_until(lambda: _received_uuids(client)[auto.uuid], 15), processes.log_of(standby)
    assert time.monotonic() - killed_at <= 10
    assert "became leader" in processes.log_of(standby)
