"""Connections: the seed 000 create, enable/disable on both paths, delete (cascade), list, details."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.connection import Connection
from models.settings import get_settings
from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function, row_counts


def test_create_answers_the_seed_shape_with_masked_credentials(client: TestClient, db: Session) -> None:
    response = client.post("/api/v3/integration", json=payloads.CONNECTION)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["integration"] and list(body["integration"]) == ["integration_connection"]
    conn = body["integration"]["integration_connection"]
    assert list(conn) == payloads.CONNECTION_KEYS
    assert conn["status"] == "ACTIVE" and conn["integration_partner"] == "QUICKBOOKS"
    assert conn["remote_instance_id"] == "tenant-9876543210"
    assert conn["remote_instance_name"] == "QuickBooks Demo Corp"
    assert conn["client_id"] == "qbclientid123"
    assert (conn["client_secret"], conn["access_token"], conn["refresh_token"]) == ("****t456", "****9...",
                                                                                     "****n789")
    stored = db.scalars(select(Connection)).one()
    assert stored.secret("client_secret", get_settings().secret_key) == "qbclientsecret456"
    assert stored.secret("user_password", get_settings().secret_key) == "Str0ngP@ssw0rd!"
    assert stored.supporting_fields == '{"region":"US","tax":"SalesTax"}'
    assert stored.provider_name == "QuickBooks" and stored.require_authentication is True


def test_credentials_never_stored_or_answered_in_clear(client: TestClient, db: Session) -> None:
    response = client.post("/api/v3/integration", json=payloads.CONNECTION)
    raw = " ".join(str(v) for v in db.execute(text("SELECT * FROM integration_connections")).one())
    secrets = ("qbclientsecret456", "qbrefreshtoken789", "Str0ngP@ssw0rd!", "eyJhbGciOiJIUzI1NiIsInR5cCI6")
    for secret in secrets:
        assert secret not in raw and secret not in response.text
        listing = client.get("/api/v2/integration-connections").text
        assert secret not in listing


def test_provider_codes(client: TestClient) -> None:
    assert create_connection(client, provider="Zoho Books")["integration_partner"] == "ZOHO_BOOKS"
    assert create_connection(client, provider="xero")["integration_partner"] == "XERO"


def test_enable_disable_messages_on_both_paths(client: TestClient, db: Session) -> None:
    uuid = create_connection(client, provider="Xero")["uuid"]
    for prefix in ("/api/v3/integration", "/api/v3/integration-connections"):
        off = client.post(f"{prefix}/{uuid}/disable")
        assert off.status_code == 200
        assert off.json() == {"message": "XERO integration has been disable successfully"}
        assert db.scalar(select(Connection.status)) == "INACTIVE"
        db.rollback()
        on = client.post(f"{prefix}/{uuid}/enable")
        assert on.json() == {"message": "XERO integration has been enable successfully"}
        assert db.scalar(select(Connection.status)) == "ACTIVE"
        db.rollback()


def test_enable_clears_suspension(client: TestClient, db: Session) -> None:
    uuid = create_connection(client)["uuid"]
    db.execute(text("UPDATE integration_connections SET suspended = :t, suspension_comment = 'x'"),
               {"t": True})
    db.commit()
    client.post(f"/api/v3/integration/{uuid}/enable")
    db.rollback()
    stored = db.scalars(select(Connection)).one()
    assert stored.suspended is False and stored.suspension_comment is None


def test_unknown_connection_is_404(client: TestClient) -> None:
    for path in ("/api/v3/integration/6d9f0b9e-7a43-4a4a-9d4e-9f3c2c1d0e11/enable",
                 "/api/v3/integration-connections/not-a-uuid/disable"):
        response = client.post(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "connection_uuid"
    assert client.delete("/api/v3/integration/nope").status_code == 404
    assert client.get("/api/v2/integration-connections/nope").status_code == 404


def test_delete_cascades_to_everything_under_the_connection(client: TestClient, db: Session) -> None:
    keep = create_connection(client)["uuid"]
    uuid = create_connection(client, provider="Xero")["uuid"]
    pf = create_partner_function(client, uuid)
    auto = create_automation(client, uuid, pf["uuid"])
    client.post(f"/api/v3/integration/{uuid}/automation/{auto['uuid']}/run")
    client.patch(f"/api/v3/integration/{uuid}/configuration", json={"a": 1})
    response = client.delete(f"/api/v3/integration/{uuid}")
    assert response.status_code == 200
    assert response.json() == {"message": "XERO integration has been deleted successfully"}
    counts = row_counts(db)
    assert counts["integration_connections"] == 1
    assert counts["automations"] == counts["partner_functions"] == counts["runs"] == 0
    assert counts["integration_configurations"] == 0
    assert client.get(f"/api/v2/integration-connections/{keep}").status_code == 200
    assert client.delete(f"/api/v3/integration/{uuid}").status_code == 404


def test_list_and_details_keep_the_seed_keys(client: TestClient) -> None:
    created = create_connection(client)
    listing = client.get("/api/v2/integration-connections").json()
    assert list(listing) == ["integration_connection", "pagination"]
    item = listing["integration_connection"][0]
    assert list(item)[: len(payloads.CONNECTION_KEYS)] == payloads.CONNECTION_KEYS
    assert {k: item[k] for k in payloads.CONNECTION_KEYS} == created
    assert item["provider_name"] == "QuickBooks" and item["require_authentication"] == "true"
    assert "user_password" not in item and "supporting_fields" not in item
    details = client.get(f"/api/v2/integration-connections/{created['uuid']}").json()
    assert list(details) == ["integration_connection"]
    one = details["integration_connection"]
    assert one == {**item, "budget": one["budget"]}  # details add the budget's state
    assert item["budget"] is None and one["budget"]["in_flight"] == 0


def test_create_rejections_name_the_field_and_write_nothing(client: TestClient, db: Session) -> None:
    before = row_counts(db)
    cases = [
        ({**payloads.CONNECTION, "provider": ""}, "provider"),
        ({k: v for k, v in payloads.CONNECTION.items() if k != "provider"}, "provider"),
        ({**payloads.CONNECTION, "require_authentication": "maybe"}, "require_authentication"),
        ({**payloads.CONNECTION, "remote_instance_id": 12}, "remote_instance_id"),
        ({**payloads.CONNECTION, "supporting_fields": "{not json"}, "supporting_fields"),
        ({**payloads.CONNECTION, "company_name": "x" * 256}, "company_name"),
        ({**payloads.CONNECTION, "user_name": "a\x00b"}, "user_name"),
    ]
    for body, field in cases:
        response = client.post("/api/v3/integration", json=body)
        assert response.status_code == 422, (field, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert row_counts(db) == before


def test_lenient_connection_fields(client: TestClient, db: Session) -> None:
    create_connection(client, require_authentication="false", expires_in=3600,
                      supporting_fields={"objects_path": "/o"}, unknown_field="ignored")
    stored = db.scalars(select(Connection)).one()
    assert stored.require_authentication is False and stored.expires_in == "3600"
    assert stored.supporting_fields == '{"objects_path": "/o"}'
