"""Partner functions: the seed 000 create, seed 001 update (bare object), enable/disable, list, details."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.api import payloads
from tests.api.conftest import create_connection, create_partner_function, row_counts


def test_create_answers_the_seed_shape(client: TestClient) -> None:
    conn = create_connection(client, provider="Xero")
    url = f"/api/v3/integration/{conn['uuid']}/partner-function/"
    response = client.post(url, json=payloads.PARTNER_FUNCTION)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["partner_function"]
    pf = body["partner_function"]
    assert list(pf) == payloads.PARTNER_FUNCTION_KEYS
    sent = payloads.PARTNER_FUNCTION["partner_function"]
    assert {k: pf[k] for k in sent} == sent
    assert pf["enabled"] == "true" and pf["provider_name"] == "XERO"
    datetime.fromisoformat(pf["created"])
    datetime.fromisoformat(pf["updated"])


def test_create_without_trailing_slash_too(client: TestClient) -> None:
    conn = create_connection(client)
    url = f"/api/v3/integration/{conn['uuid']}/partner-function"
    response = client.post(url, json=payloads.PARTNER_FUNCTION)
    assert response.status_code == 200


def test_update_answers_the_bare_object_of_seed_001(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    url = f"/api/v3/integration/{conn['uuid']}/partner-function/{pf['uuid']}"
    response = client.patch(url, json=payloads.PARTNER_FUNCTION_UPDATE)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == payloads.PARTNER_FUNCTION_KEYS
    sent = payloads.PARTNER_FUNCTION_UPDATE["partner_function"]
    assert {k: body[k] for k in sent} == sent
    assert body["uuid"] == pf["uuid"] and body["created"] == pf["created"]


def test_update_changes_only_the_fields_sent(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    url = f"/api/v3/integration/{conn['uuid']}/partner-function/{pf['uuid']}"
    body = client.patch(url, json={"partner_function": {"tag": "new-tag", "uuid": "ignored"}}).json()
    assert body["tag"] == "new-tag" and body["name"] == "PartnerRole" and body["uuid"] == pf["uuid"]
    assert client.get(url).json()["partner_function"]["tag"] == "new-tag"


def test_enable_disable_messages(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    url = f"/api/v3/integration/{conn['uuid']}/partner-function/{pf['uuid']}"
    disabled = {"message": "Partner function has been disabled successfully"}
    assert client.post(f"{url}/disable").json() == disabled
    assert client.get(url).json()["partner_function"]["enabled"] == "false"
    enabled = {"message": "Partner function has been enabled successfully"}
    assert client.post(f"{url}/enable").json() == enabled
    assert client.get(url).json()["partner_function"]["enabled"] == "true"


def test_list_and_details(client: TestClient) -> None:
    conn = create_connection(client)
    first = create_partner_function(client, conn["uuid"])
    second = create_partner_function(client, conn["uuid"], name="Other", direction="EXPORT")
    base = f"/api/v3/integration/{conn['uuid']}/partner-function"
    listing = client.get(f"{base}/").json()
    assert list(listing) == ["partner_functions", "pagination"]
    assert [pf["uuid"] for pf in listing["partner_functions"]] == [first["uuid"], second["uuid"]]
    assert all(list(pf) == payloads.PARTNER_FUNCTION_KEYS for pf in listing["partner_functions"])
    assert list(listing["pagination"]) == payloads.PAGINATION_KEYS
    assert client.get(base).json() == listing
    details = client.get(f"{base}/{second['uuid']}").json()
    assert details == {"partner_function": second}


def test_partner_function_of_another_connection_is_404(client: TestClient) -> None:
    one, other = create_connection(client), create_connection(client, remote_instance_id="another-tenant")
    pf = create_partner_function(client, one["uuid"])
    url = f"/api/v3/integration/{other['uuid']}/partner-function/{pf['uuid']}"
    for response in (client.get(url), client.patch(url, json=payloads.PARTNER_FUNCTION_UPDATE),
                     client.post(f"{url}/enable"), client.post(f"{url}/disable")):
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "partner_function_uuid"


def test_rejections_name_the_field_and_write_nothing(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    base = f"/api/v3/integration/{conn['uuid']}/partner-function"
    before = row_counts(db)
    cases = [
        ({"partner_function": {"direction": "IMPORT"}}, "partner_function.name"),
        ({"partner_function": {"name": "  "}}, "partner_function.name"),
        ({"partner_function": {"name": "x", "direction": "SIDEWAYS"}}, "partner_function.direction"),
        ({"partner_function": {"name": ["x"]}}, "partner_function.name"),
        ({"partner_function": "PartnerRole"}, "partner_function"),
        ({}, "partner_function"),
    ]
    for body, field in cases:
        response = client.post(f"{base}/", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    bad_update = client.patch(f"{base}/{pf['uuid']}", json={"partner_function": {"name": None}})
    assert bad_update.status_code == 422
    assert bad_update.json()["errors"] == [{"field": "partner_function.name", "message": "cannot be empty"}]
    assert row_counts(db) == before
    assert client.get(f"{base}/{pf['uuid']}").json()["partner_function"]["name"] == "PartnerRole"
