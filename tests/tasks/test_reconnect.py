"""Reconnecting after a refused refresh token (invalid_grant): the connection PATCH or `automation-worker
connections update` with new tokens clears needs_reconnect, and the next run succeeds; a second create for
the same provider and remote_instance_id is a 409 naming the first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.main import app
from models.connection import Connection
from models.settings import get_settings
from tasks.run import execute
from tests.api import payloads
from tests.conftest import TEST_API_TOKEN
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, fresh, record, slot
from worker.cli.main import main

pytest_plugins = ["tests.support.run_support"]
NEW_ACCESS, NEW_REFRESH = "access-token-after-reconnect", "refresh-token-after-reconnect"
REFUSED = "connection needs reconnection: the refresh token was refused (invalid_grant)"


@pytest.fixture()
def api(db: Session, redis_url: str) -> Iterator[TestClient]:
    with TestClient(app, headers={"Authorization": f"Bearer {TEST_API_TOKEN}"}) as client:
        yield client


def _refused_then_flagged(db: Session, server: IntegrationServer) -> tuple[str, str]:
    """An automation whose partner has issued new tokens since: its run fails with invalid_grant and the
    next one is skipped; (automation uuid, connection uuid)."""
    server.set_records("supplier", [record("a", 1), record("b", 2)])
    server.require_tokens({NEW_ACCESS}, NEW_REFRESH)
    auto = definitions(db, server)
    failed = execute(auto.uuid, slot().isoformat())
    assert (failed["status"], failed["reason"]) == ("failed", REFUSED)
    conn = fresh(db, auto.connection)
    assert conn.needs_reconnect
    skipped = execute(auto.uuid, slot(1).isoformat())
    assert skipped["status"] == "skipped" and "needs reconnection" in skipped["reason"]
    return auto.uuid, conn.uuid


def test_patch_with_new_tokens_makes_the_next_run_succeed(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis, api: TestClient) -> None:
    auto_uuid, conn_uuid = _refused_then_flagged(db, server)
    response = api.patch(f"/api/v3/integration/{conn_uuid}", json={
        "integration_access_token": NEW_ACCESS, "integration_refresh_token": NEW_REFRESH})
    assert response.status_code == 200, response.text
    shown = response.json()["integration"]["integration_connection"]
    assert shown["access_token"] == "****" + NEW_ACCESS[-4:]
    summary = execute(auto_uuid, slot(2).isoformat())
    assert summary["status"] == "succeeded" and summary["records_sent"] == 2, summary
    assert {inv.authorization for inv in server.invocations()} == {f"Bearer {NEW_ACCESS}"}


def test_cli_update_by_remote_instance_id_reconnects(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        capsys: pytest.CaptureFixture[str]) -> None:
    auto_uuid, conn_uuid = _refused_then_flagged(db, server)
    assert main(["connections", "update", "tenant-1", "--access-token", NEW_ACCESS,
                 "--refresh-token", NEW_REFRESH]) == 0
    out = capsys.readouterr().out
    assert f"connection {conn_uuid} (SANDBOX tenant-1): stored a new access-token, refresh-token; " \
           "reconnected" in out, out
    db.expire_all()
    summary = execute(auto_uuid, slot(2).isoformat())
    assert summary["status"] == "succeeded" and summary["records_sent"] == 2, summary
    key = get_settings().secret_key
    stored = db.scalars(select(Connection).where(Connection.uuid == conn_uuid)).one()
    assert stored.secret("refresh_token", key) == NEW_REFRESH and not stored.needs_reconnect


def test_cli_update_names_what_it_cannot_find(capsys: pytest.CaptureFixture[str], db: Session) -> None:
    assert main(["connections", "update", "no-such-tenant", "--access-token", "x"]) == 2
    assert "no connection with UUID or remote_instance_id 'no-such-tenant'" in capsys.readouterr().err
    assert main(["connections", "update", "no-such-tenant"]) == 2
    assert "nothing to update" in capsys.readouterr().err


def test_second_create_for_the_same_tenant_is_409_naming_the_first(api: TestClient) -> None:
    first = api.post("/api/v3/integration", json=payloads.CONNECTION)
    assert first.status_code == 200, first.text
    uuid = first.json()["integration"]["integration_connection"]["uuid"]
    second = api.post("/api/v3/integration", json=payloads.CONNECTION)
    assert second.status_code == 409
    error = second.json()["errors"][0]
    assert error["field"] == "remote_instance_id" and uuid in error["message"]
    assert f"PATCH /api/v3/integration/{uuid}" in error["message"]
    other_provider = api.post("/api/v3/integration", json={**payloads.CONNECTION, "provider": "Zoho Books"})
    assert other_provider.status_code == 200  # another provider's tenant may share the id
    other_uuid = other_provider.json()["integration"]["integration_connection"]["uuid"]
    moved = api.patch(f"/api/v3/integration/{other_uuid}", json={"provider": payloads.CONNECTION["provider"]})
    assert moved.status_code == 409 and uuid in moved.json()["errors"][0]["message"]
