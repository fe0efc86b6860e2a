"""The sandbox integration API: the contract with generated records, and a SANDBOX connection running
against it end to end (uvicorn on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from models.settings import get_settings
from sandbox import data as sandbox_data
from sandbox.app import invocations, sandbox_app
from tasks.run import execute
from tests.support.factories import make_automation, make_connection, make_partner_function
from tests.support.run_helpers import run_of, slot

pytest_plugins = ["tests.support.run_support"]
AUTH = {"Authorization": "Bearer any-token"}


@pytest.fixture()
def client() -> Iterator[TestClient]:
    invocations.clear()
    with TestClient(sandbox_app) as c:
        yield c


@pytest.fixture()
def sandbox_url() -> Iterator[str]:
    """The sandbox served by uvicorn on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(sandbox_app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    invocations.clear()
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_records_are_deterministic_and_change_over_time() -> None:
    now = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
    first = sandbox_data.records("supplier", now)
    assert first == sandbox_data.records("supplier", now)
    later = sandbox_data.records("supplier", now + timedelta(minutes=90))
    assert 89 <= len({r["id"] for r in later} - {r["id"] for r in first}) <= 91  # one new a minute
    before = {r["id"]: r for r in first}
    assert any(before[r["id"]]["updated_at"] != r["updated_at"] for r in later if r["id"] in before)
    rec = first[-1]
    assert {"id", "created_at", "updated_at", "AccountNumber", "ContactID", "Name", "Status", "Balance",
            "Addresses"} <= set(rec)
    assert all(r["updated_at"] <= now.isoformat() for r in first)


def test_pagination_and_updated_since(client: TestClient) -> None:
    since = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"updated_since": since, "limit": 7, **({"cursor": cursor} if cursor else {})}
        body = client.get("/objects/customer", params=params, headers=AUTH).json()
        seen += [r["id"] for r in body["records"]]
        assert all(r["updated_at"] >= since for r in body["records"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 30


def test_auth_token_refresh_and_errors(client: TestClient) -> None:
    assert client.get("/objects/item").status_code == 401
    assert client.get("/objects/item", headers={"Authorization": "Bearer expired-1"}).status_code == 401
    assert client.get("/objects/planet", headers=AUTH).status_code == 404
    fresh = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "r1"}).json()
    assert fresh["access_token"].startswith("sandbox-access-") and fresh["refresh_token"]
    refused = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "revoked"})
    assert refused.status_code == 400 and refused.json() == {"error": "invalid_grant"}


def test_invocations_are_recorded_once_per_key(client: TestClient) -> None:
    body = {"records": [{"id": "SUP-1"}], "run": {"uuid": "r"}, "automation": {"uuid": "a"}}
    for _ in range(2):
        client.post("/partner-functions/pf-1/invoke", json=body, headers={**AUTH, "Idempotency-Key": "r:0"})
    listed = client.get("/invocations").json()
    assert listed["count"] == 1 and listed["duplicates"] == 1
    assert listed["invocations"][0]["record_ids"] == ["SUP-1"]


def test_a_sandbox_connection_runs_end_to_end(db: Session, sandbox_url: str, fast: None, rclient: redis.Redis,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "sandbox_url", sandbox_url)
    monkeypatch.setattr(get_settings(), "invoke_batch_size", 100)
    conn = make_connection(db, provider="SANDBOX", api_domain="", account_server="", access_token="expired-x",
                           refresh_token="sandbox-refresh")
    pf = make_partner_function(db, conn)
    auto = make_automation(db, conn, pf, watermark_at=datetime.now(UTC) - timedelta(minutes=20),
                           additional_criteria=True, criteria=[{"group_condition": "AND", "rules": [
                               {"field_name": "Status", "operator": "EQUALS", "value": "active",
                                "condition": "AND"}]}])
    db.commit()
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded", summary
    assert 0 < summary["records_matched"] < summary["records_fetched"]
    sent = [i for inv in invocations.newest(100, pf.uuid) for i in inv["record_ids"]]
    assert len(sent) == summary["records_sent"] == summary["records_matched"]
    assert run_of(db, auto).status == "succeeded"
