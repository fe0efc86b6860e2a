"""Operator endpoints: pause/resume, trigger now, run history, one run, schedule preview, /health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from api.deps import get_redis
from api.main import app
from api.routes import health
from models import keys
from models.automation import Automation
from models.run import Run
from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function

DEAD_REDIS = "redis://127.0.0.1:1/0"


def _dead_redis() -> redis.Redis:
    return redis.Redis.from_url(DEAD_REDIS, socket_connect_timeout=0.5, socket_timeout=0.5)


def _url(setup: dict[str, Any]) -> str:
    return f"{setup['base']}/automation/{setup['automation']['uuid']}"


def test_pause_with_comment_and_resume(client: TestClient, db: Session, setup: dict[str, Any]) -> None:
    url = _url(setup)
    paused = client.post(f"{url}/pause", json={"comment": "supplier import under maintenance"})
    assert paused.status_code == 200
    body = paused.json()["integration_automation"]
    assert body["status"] == "PAUSED" and body["status_comment"] == "supplier import under maintenance"
    assert body["next_run_at"] is None
    assert db.scalars(select(Automation.next_run_at)).one() is None
    db.rollback()
    resumed = client.post(f"{url}/resume").json()["integration_automation"]
    assert resumed["status"] == "ACTIVE" and resumed["status_comment"] is None
    next_run = datetime.fromisoformat(resumed["next_run_at"])
    assert datetime.now(UTC) < next_run <= datetime.now(UTC) + timedelta(hours=8)


def test_pause_without_a_body(client: TestClient, setup: dict[str, Any]) -> None:
    response = client.post(f"{_url(setup)}/pause")
    assert response.status_code == 200 and response.json()["integration_automation"]["status"] == "PAUSED"
    bad = client.post(f"{_url(setup)}/pause", content=b"{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body"


def test_trigger_now_queues_a_manual_run(client: TestClient, db: Session, setup: dict[str, Any],
                                         redis_url: str) -> None:
    queue = redis.Redis.from_url(redis_url)
    queued_before = queue.llen(keys.RUN_QUEUE)
    before = datetime.now(UTC)
    response = client.post(f"{_url(setup)}/run")
    assert response.status_code == 202, response.text
    assert queue.llen(keys.RUN_QUEUE) == queued_before + 1
    run = response.json()["run"]
    assert list(response.json()) == ["run"] and list(run) == payloads.RUN_KEYS
    assert run["automation_uuid"] == setup["automation"]["uuid"]
    assert (run["trigger"], run["status"], run["attempts"], run["records_sent"]) == ("manual", "queued", 0, 0)
    assert before <= datetime.fromisoformat(run["scheduled_for"]) <= datetime.now(UTC)
    stored = db.scalars(select(Run)).one()
    assert (stored.uuid, stored.status, stored.trigger) == (run["uuid"], "queued", "manual")
    assert client.get(f"/api/v3/runs/{run['uuid']}").json() == {"run": run}


def test_a_paused_automation_still_gets_its_manual_run(client: TestClient, setup: dict[str, Any]) -> None:
    client.post(f"{_url(setup)}/pause", json={"comment": "x"})
    response = client.post(f"{_url(setup)}/run")
    assert response.status_code == 202 and response.json()["run"]["status"] == "queued"


def test_trigger_with_redis_down_records_a_failed_run_and_answers_503(client: TestClient, db: Session,
                                                                     setup: dict[str, Any]) -> None:
    app.dependency_overrides[get_redis] = _dead_redis
    response = client.post(f"{_url(setup)}/run")
    assert response.status_code == 503
    assert response.json()["errors"][0]["field"] == "redis"
    stored = db.scalars(select(Run)).one()
    assert stored.status == "failed" and stored.reason and stored.finished_at is not None


def test_runs_newest_first_paginated(client: TestClient, db: Session, setup: dict[str, Any]) -> None:
    auto = db.scalars(select(Automation)).one()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for hours in (3, 1, 2, 5, 4):
        db.add(Run(automation_id=auto.id, scheduled_for=base + timedelta(hours=hours), trigger="schedule",
                   status="succeeded" if hours % 2 else "failed"))
    db.commit()
    first = client.get(f"{_url(setup)}/runs", params={"limit": 2}).json()
    assert list(first) == ["runs", "pagination"]
    assert [r["scheduled_for"][11:13] for r in first["runs"]] == ["05", "04"]
    assert first["pagination"]["records"] == 5 and first["pagination"]["previous_page"] is None
    second = client.get(first["pagination"]["next_page"]).json()
    assert [r["scheduled_for"][11:13] for r in second["runs"]] == ["03", "02"]
    failed = client.get(f"{_url(setup)}/runs", params={"status": "failed"}).json()
    assert [r["scheduled_for"][11:13] for r in failed["runs"]] == ["04", "02"]
    oldest = client.get(f"{_url(setup)}/runs", params={"sort": "scheduled_for", "limit": 1}).json()
    assert oldest["runs"][0]["scheduled_for"].startswith("2026-01-01T01:00:00")


def test_unknown_run_is_404(client: TestClient) -> None:
    for uuid in ("6d9f0b9e-7a43-4a4a-9d4e-9f3c2c1d0e11", "nope"):
        response = client.get(f"/api/v3/runs/{uuid}")
        assert response.status_code == 404 and response.json()["errors"][0]["field"] == "run_uuid"


def test_schedule_preview_in_the_automation_zone(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"], check_on="daily", custom_day="",
                             time_zone="Europe/London")
    url = f"/api/v3/integration/{conn['uuid']}/automation/{auto['uuid']}/schedule"
    body = client.get(url).json()
    assert list(body) == ["next_runs", "checkOnText", "time_zone"]
    assert body["time_zone"] == "Europe/London"
    assert body["checkOnText"] == "Every day at 06:45:23 Europe/London"
    assert len(body["next_runs"]) == 10
    fires = [datetime.fromisoformat(t) for t in body["next_runs"]]
    assert all(f.strftime("%H:%M:%S") == "06:45:23" and f.utcoffset() is not None for f in fires)
    assert fires == sorted(fires) and fires[0] > datetime.now(UTC)
    assert len(client.get(url, params={"count": 100}).json()["next_runs"]) == 100
    for count in ("0", "101", "ten"):
        response = client.get(url, params={"count": count})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "count"


def test_health_ok_without_a_token(anonymous: TestClient) -> None:
    response = anonymous.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("status", "database", "redis")} == {"status": "ok", "database": "ok",
                                                                     "redis": "ok"}
    assert body["beat"]["status"] in ("ok", "stale", "absent")


def test_health_503_names_the_part_that_is_down(anonymous: TestClient) -> None:
    app.dependency_overrides[get_redis] = _dead_redis
    try:
        response = anonymous.get("/health")
        assert response.status_code == 503
        assert response.json()["database"] == "ok" and response.json()["redis"].startswith("unavailable")
        dead_db = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                                connect_args={"connect_timeout": 1})
        app.dependency_overrides[health.get_engine] = lambda: dead_db
        both = anonymous.get("/health").json()
        assert both["status"] == "unavailable" and both["database"].startswith("unavailable")
        assert "nobody" not in str(both)
    finally:
        app.dependency_overrides.clear()
