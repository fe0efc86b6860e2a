"""Partner limits through the API (issue 12): rate_limits on create and PATCH, the limits in force and
the budget's state in details, bad values refused naming the field with nothing written; the connection
PATCH changes only the fields sent and reconnects a flagged connection; deferred runs listed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.base import utcnow
from models.connection import Connection
from models.run import Run
from models.settings import get_settings
from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function, row_counts


def _details(client: TestClient, uuid: str) -> dict:
    response = client.get(f"/api/v2/integration-connections/{uuid}")
    assert response.status_code == 200, response.text
    return response.json()["integration_connection"]


def test_provider_defaults_are_in_force_and_the_budget_state_is_shown(client: TestClient) -> None:
    conn = create_connection(client, provider="Xero")
    details = _details(client, conn["uuid"])
    assert details["rate_limits"] == {"per_minute": 60, "per_day": 5000, "concurrent": 5,
                                      "app_per_minute": 10000, "concurrent_scope": "connection",
                                      "overrides": {}}
    assert details["budget"] == {"used_this_minute": 0, "used_today": 0, "in_flight": 0,
                                 "paused_until": None, "paused_reason": None}
    sandbox = _details(client, create_connection(client, provider="Sandbox")["uuid"])
    assert (sandbox["rate_limits"]["per_minute"], sandbox["rate_limits"]["concurrent"]) == (None, 10)
    netsuite = _details(client, create_connection(client, provider="NetSuite")["uuid"])
    assert netsuite["rate_limits"]["concurrent_scope"] == "account"


def test_rate_limits_override_on_create_and_patch_key_by_key(client: TestClient, db: Session) -> None:
    conn = create_connection(client, provider="Zoho Books",
                             rate_limits={"per_day": 10000, "concurrent": None})
    limits = _details(client, conn["uuid"])["rate_limits"]
    assert (limits["per_minute"], limits["per_day"], limits["concurrent"]) == (100, 10000, None)
    response = client.patch(f"/api/v3/integration/{conn['uuid']}", json={"rate_limits": {"per_minute": "30"}})
    assert response.status_code == 200, response.text
    limits = _details(client, conn["uuid"])["rate_limits"]
    assert (limits["per_minute"], limits["per_day"]) == (30, 10000)
    assert limits["overrides"] == {"per_minute": 30, "per_day": 10000, "concurrent": None}
    client.patch(f"/api/v3/integration/{conn['uuid']}", json={"rate_limits": None})
    assert _details(client, conn["uuid"])["rate_limits"]["per_day"] == 1000  # the provider's again


@pytest.mark.parametrize(("value", "field"), [
    ({"per_minute": 0}, "rate_limits.per_minute"),
    ({"per_day": -1}, "rate_limits.per_day"),
    ({"concurrent": "many"}, "rate_limits.concurrent"),
    ({"concurrent": True}, "rate_limits.concurrent"),
    ({"per_hour": 5}, "rate_limits.per_hour"),
    ([60], "rate_limits"),
])
def test_bad_rate_limits_are_a_422_naming_the_field_and_nothing_is_written(
        client: TestClient, db: Session, value: object, field: str) -> None:
    conn = create_connection(client)
    before = row_counts(db)
    stored = db.scalars(select(Connection)).one().rate_limits
    for response in (client.post("/api/v3/integration", json={**payloads.CONNECTION, "rate_limits": value}),
                     client.patch(f"/api/v3/integration/{conn['uuid']}", json={"rate_limits": value})):
        assert response.status_code == 422, response.text
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.endswith(field) for f in fields), fields
    assert row_counts(db) == before
    db.expire_all()
    assert db.scalars(select(Connection)).one().rate_limits == stored


def test_patch_changes_only_the_fields_sent_encrypts_credentials_and_reconnects(
        client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    stored = db.scalars(select(Connection)).one()
    stored.needs_reconnect = True
    db.commit()
    response = client.patch(f"/api/v3/integration/{conn['uuid']}",
                            json={"api_domain": "http://127.0.0.1:9/new",
                                  "integration_access_token": "new-token-1234",
                                  "integration_refresh_token": "new-refresh-5678"})
    assert response.status_code == 200, response.text
    public = response.json()["integration"]["integration_connection"]
    assert (public["access_token"], public["refresh_token"]) == ("****1234", "****5678")
    assert "new-token-1234" not in response.text
    db.expire_all()
    stored = db.scalars(select(Connection)).one()
    key = get_settings().secret_key
    assert stored.secret("access_token", key) == "new-token-1234" and stored.needs_reconnect is False
    assert stored.api_domain == "http://127.0.0.1:9/new"
    assert stored.secret("client_secret", key) == "qbclientsecret456"  # not sent: kept
    assert stored.remote_instance_name == payloads.CONNECTION["remote_instance_name"]
    assert client.patch("/api/v3/integration/00000000-0000-4000-8000-000000000000",
                        json={"api_domain": "x"}).status_code == 404


def test_deferred_runs_are_listed_with_their_resume_at(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], perform_action=pf["uuid"])
    automation_id = db.scalar(select(Automation.id).where(Automation.uuid == auto["uuid"]))
    resume = utcnow() + timedelta(hours=3)
    db.add(Run(automation_id=automation_id, scheduled_for=utcnow(), trigger="schedule", status="deferred",
               reason="XERO answered 429 (day limit); Retry-After 10800 s; resumes at ...", resume_at=resume,
               throttled=1, budget_wait_ms=12))
    db.add(Run(automation_id=automation_id, scheduled_for=utcnow() - timedelta(hours=1), trigger="schedule",
               status="succeeded"))
    db.commit()
    response = client.get("/api/v3/runs", params={"status": "deferred"})
    assert response.status_code == 200, response.text
    runs = response.json()["runs"]
    assert len(runs) == 1 and runs[0]["automation_uuid"] == auto["uuid"]
    assert runs[0]["resume_at"] == resume.isoformat() and runs[0]["throttled"] == 1
    assert runs[0]["budget_wait_ms"] == 12
    assert len(client.get("/api/v3/runs").json()["runs"]) == 2
    assert client.get("/api/v3/runs", params={"status": "later"}).status_code == 422
