"""A slot that passes while no worker runs shows `late` (real beat, no worker); details describe the recent
past (the last 10 runs with drift), the near future (5 fire times) and the last 24 hours per status."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.main import app
from models import keys
from models.run import Run
from models.settings import get_settings
from tests.api.conftest import AUTH
from tests.support import processes
from tests.support.beat_support import due_automation, reload
from tests.support.factories import make_partner_function

LATE_S = 3.0


@pytest.fixture()
def api(db: Session, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API with LATE_AFTER_S shortened (on the process's settings object)."""
    monkeypatch.setattr(get_settings(), "late_after_s", LATE_S)
    with TestClient(app, headers=AUTH) as client:
        yield client


@pytest.mark.slow
def test_a_slot_passing_while_no_worker_runs_shows_late_within_a_minute(
        db: Session, api: TestClient, redis_url: str) -> None:
    rc = redis.Redis.from_url(redis_url)
    rc.delete(keys.BEAT_LEADER_LOCK, keys.SCHEDULE_GENERATION, keys.RUN_QUEUE)
    now = datetime.now(UTC).replace(microsecond=0)
    auto = due_automation(db, now, check_on="1 hour")
    make_partner_function(db, auto.connection)
    auto.partner_function = auto.connection.partner_functions[0]
    db.commit()
    started: list[subprocess.Popen[bytes]] = []
    try:
        beat = processes.start_beat(processes.celery_env(), "late-beat")
        started.append(beat)
        assert processes.wait_until(lambda: reload(db, auto).awaiting_slot is not None, 30), \
            processes.log_of(beat)[-3000:]
        dispatched = time.monotonic()  # beat sent the slot; no worker takes it

        def late_uuids() -> list[str]:
            return [p["uuid"] for p in api.get("/api/v3/automations/health").json()["late"]]

        assert processes.wait_until(lambda: auto.uuid in late_uuids(), 60, 0.5)
        assert time.monotonic() - dispatched <= 60
        base = f"/api/v3/integration/{auto.connection.uuid}/automation"
        health = api.get(f"{base}/{auto.uuid}").json()["integration_automation"]["health"]
        assert health["state"] == "late" and "no run has started" in health["reason"]
        listed = api.get(base, params={"health": "late"}).json()["integration_automations"]
        assert [a["uuid"] for a in listed] == [auto.uuid]
    finally:
        for proc in started:
            processes.stop(proc)
        rc.delete(keys.RUN_QUEUE, keys.BEAT_LEADER_LOCK)
        rc.close()


def test_details_describe_recent_runs_next_runs_and_24h_counts(db: Session, api: TestClient) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    auto = due_automation(db, now + timedelta(hours=1), check_on="1 hour")
    statuses = ["succeeded", "failed", "skipped", "succeeded"] * 3  # 12 runs, hourly, the newest last
    for i, status in enumerate(statuses):
        at = now - timedelta(hours=len(statuses) - i)
        db.add(Run(automation_id=auto.id, scheduled_for=at, started_at=at + timedelta(seconds=i / 10),
                   status=status, trigger="schedule"))
    db.add(Run(automation_id=auto.id, scheduled_for=now - timedelta(days=2), status="failed"))
    db.commit()
    body = api.get(f"/api/v3/integration/{auto.connection.uuid}/automation/{auto.uuid}").json()
    described = body["integration_automation"]
    recent = described["recent_runs"]
    assert len(recent) == 10
    assert [r["status"] for r in recent] == list(reversed(statuses))[:10]
    assert recent[0]["drift_s"] == pytest.approx(1.1) and set(recent[0]) >= {"scheduled_for", "started_at"}
    fires = [datetime.fromisoformat(t) for t in described["next_runs"]]
    assert len(fires) == 5 and fires == sorted(fires) and fires[0] > now
    assert all((b - a) == timedelta(hours=1) for a, b in zip(fires, fires[1:], strict=False))
    assert described["counts_24h"] == {"succeeded": 6, "failed": 3, "skipped": 3}
