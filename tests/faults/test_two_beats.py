"""Fault 2: two beats over a sustained stream, then the leader SIGKILLed: no slot twice, none lost, and the
standby dispatches within 10 s. A probe worker records every message it receives
(tests/support/beat_probe)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from models.automation import Automation
from models.notify import schedule_changed
from models.scheduling import next_run_at, schedule_of, slot_of
from tests.faults.support import fault_env, log_dir, logs, wait_for
from tests.support import beat_probe, processes
from tests.support.beat_support import due_automation
from tests.support.factories import make_connection

AUTOMATIONS = 150  # '1 minute' with 59 s of jitter: about 2.5 slots due every second
SUSTAIN_S = 40.0
TAKEOVER_S = 10.0


def _stream(db: Session) -> list[Automation]:
    """Automations every minute, spread over the minute by their jitter, the first dispatches starting now."""
    conn = make_connection(db)
    now = datetime.now(UTC)
    autos = [due_automation(db, now + timedelta(days=1), connection=conn, check_on="1 minute", jitter_s=59)
             for _ in range(AUTOMATIONS)]
    stmt = text("UPDATE automations SET next_run_at = :t WHERE id = :id").bindparams(
        bindparam("t", type_=Automation.__table__.c.next_run_at.type))  # stored exactly as beat writes it
    for auto in autos:
        # The slot after now - 50 s: whatever second of the minute the test starts in, the first dispatches
        # spread over the coming minute (some already due), so the stream is never empty before `until`.
        db.execute(stmt, {"t": next_run_at(auto, now - timedelta(seconds=50)), "id": auto.id})
    db.commit()
    return autos


def _expected(autos: list[Automation], db: Session, until: datetime) -> set[tuple[str, str]]:
    """Every (automation, slot) whose dispatch time fell between the first next_run_at and `until`."""
    db.expire_all()
    out: set[tuple[str, str]] = set()
    for auto in autos:
        at = _first[auto.id]
        while at <= until:
            slot = slot_of(auto, at)
            out.add((auto.uuid, slot.isoformat()))
            at = next_run_at(auto, slot)  # type: ignore[assignment]
    return out


_first: dict[int, datetime] = {}


def test_two_beats_then_the_leader_killed_no_duplicate_no_loss_takeover_within_10_s(
        db: Session, database_url: str, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    queues.delete(beat_probe.PROBE_KEY)
    autos = _stream(db)
    db.expire_all()
    _first.clear()
    _first.update({a.id: db.get(Automation, a.id).next_run_at for a in autos})  # type: ignore[misc]
    assert all(schedule_of(a).kind == "interval" for a in autos)
    env, at = fault_env(), log_dir(tmp_path)
    started.append(processes.start_worker(env, "probe", 2, at, app="tests.support.beat_probe"))
    beats = [processes.start_beat(env, f"beat-{i}", at) for i in range(2)]
    started.extend(beats)
    wait_for(lambda: any("became leader" in processes.log_of(b) for b in beats), 30, lambda: logs(beats))
    time.sleep(SUSTAIN_S)
    leader = next(b for b in beats if "became leader" in processes.log_of(b))
    standby = next(b for b in beats if b is not leader)
    assert "became leader" not in processes.log_of(standby), f"both beats led\n{logs(beats)}"
    processes.kill(leader)
    killed = time.monotonic()
    marker = due_automation(db, datetime.now(UTC).replace(microsecond=0))
    schedule_changed(queues)
    received = lambda: beat_probe.received(queues)  # noqa: E731
    takeover_s = wait_for(lambda: any(r["automation_uuid"] == marker.uuid for r in received()), 30,
                          lambda: f"standby never dispatched\n{logs([standby])}")
    takeover_s = time.monotonic() - killed
    time.sleep(5)
    until = datetime.now(UTC) - timedelta(seconds=3)
    _assert_each_slot_once(received(), _expected(autos, db, until))
    assert takeover_s <= TAKEOVER_S, f"standby dispatched {takeover_s:.1f} s after the kill (> {TAKEOVER_S})"
    assert "became leader" in processes.log_of(standby)
    print(f"\nfault 2: two beats for {SUSTAIN_S:.0f} s over {AUTOMATIONS} automations, "
          f"{len(received())} messages, duplicates 0, lost 0; standby dispatched {takeover_s:.1f} s after "
          "the leader's SIGKILL")


def _assert_each_slot_once(received: list[dict], expected: set[tuple[str, str]]) -> None:
    """Every expected slot received exactly once; no slot received twice at all."""
    counts = Counter((r["automation_uuid"], r["scheduled_for"]) for r in received)
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not twice, f"slots dispatched more than once: {twice}"
    lost = expected - set(counts)
    assert not lost, f"{len(lost)} slot(s) due but never dispatched: {sorted(lost)[:10]}"
    assert len(expected) >= 40, f"the stream was too thin to prove much: {len(expected)} slots"
