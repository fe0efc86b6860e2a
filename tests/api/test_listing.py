"""Collections: limit/offset with the pagination object, filters by query parameter, whitelisted sort."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function

CONNECTIONS = "/api/v2/integration-connections"


def test_pagination_object_and_page_urls(client: TestClient) -> None:
    created = [create_connection(client, remote_instance_id=f"t{i}")["uuid"] for i in range(5)]
    first = client.get(CONNECTIONS, params={"limit": 2}).json()
    assert list(first["pagination"]) == payloads.PAGINATION_KEYS
    assert first["pagination"]["records"] == 5 and first["pagination"]["limit"] == 2
    assert first["pagination"]["offset"] == 0 and first["pagination"]["previous_page"] is None
    assert first["pagination"]["next_page"] == f"http://testserver{CONNECTIONS}?limit=2&offset=2"
    seen = [c["uuid"] for c in first["integration_connection"]]
    page = first
    while page["pagination"]["next_page"]:
        page = client.get(page["pagination"]["next_page"]).json()
        seen += [c["uuid"] for c in page["integration_connection"]]
    assert seen == created
    assert page["pagination"]["offset"] == 4
    assert page["pagination"]["previous_page"] == f"http://testserver{CONNECTIONS}?limit=2&offset=2"


def test_page_urls_keep_filters_and_sort(client: TestClient) -> None:
    for i in range(3):
        create_connection(client, provider="Xero", remote_instance_id=f"tenant-{i}")
    body = client.get(CONNECTIONS, params={"provider": "xero", "sort": "-created_at", "limit": 1}).json()
    next_page = body["pagination"]["next_page"]
    assert "provider=xero" in next_page and "sort=-created_at" in next_page


def test_bad_paging_parameters_are_422(client: TestClient) -> None:
    for params, field in (({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"offset": -1}, "offset"),
                          ({"limit": "many"}, "limit"), ({"sort": "password"}, "sort"),
                          ({"sort": "-nothing"}, "sort"), ({"status": "A\x00"}, "status")):
        response = client.get(CONNECTIONS, params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == field
    assert client.get(CONNECTIONS, params={"limit": 500}).status_code == 200
    assert client.get(CONNECTIONS, params={"offset": 100}).json()["integration_connection"] == []


def test_connection_filters(client: TestClient) -> None:
    xero = create_connection(client, provider="Xero")
    zoho = create_connection(client, provider="Zoho Books")
    client.post(f"/api/v3/integration/{zoho['uuid']}/disable")

    def uuids(**params: str) -> list[str]:
        return [c["uuid"] for c in client.get(CONNECTIONS, params=params).json()["integration_connection"]]

    assert uuids(provider="Zoho Books") == uuids(provider="ZOHO_BOOKS") == [zoho["uuid"]]
    assert uuids(status="inactive") == [zoho["uuid"]]
    assert uuids(status="ACTIVE", provider="XERO") == [xero["uuid"]]
    assert uuids(unknown="ignored") == [xero["uuid"], zoho["uuid"]]
    assert uuids(sort="-created_at") == [zoho["uuid"], xero["uuid"]]
    assert uuids(sort="provider") == [xero["uuid"], zoho["uuid"]]


def test_partner_function_filters(client: TestClient) -> None:
    conn = create_connection(client)
    imp = create_partner_function(client, conn["uuid"], name="b")
    exp = create_partner_function(client, conn["uuid"], name="a", direction="EXPORT")
    base = f"/api/v3/integration/{conn['uuid']}/partner-function/"
    client.post(f"{base}{imp['uuid']}/disable")

    def names(**params: str) -> list[str]:
        return [p["name"] for p in client.get(base, params=params).json()["partner_functions"]]

    assert names(direction="export") == ["a"] and names(enabled="false") == ["b"]
    assert names(enabled="true") == ["a"] and names(sort="name") == ["a", "b"]
    assert names(sort="-updated_at") == ["b", "a"]
    bad = client.get(base, params={"enabled": "sometimes"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "enabled"
    assert exp["uuid"] != imp["uuid"]


def test_automation_filters_and_sort(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    a = create_automation(client, conn["uuid"], pf["uuid"], code="a", name="zeta", applies_to="customer")
    b = create_automation(client, conn["uuid"], pf["uuid"], code="b", name="alpha", direction="EXPORT")
    base = f"/api/v3/integration/{conn['uuid']}/automation"
    client.post(f"{base}/{a['uuid']}/pause", json={"comment": "c"})

    def codes(**params: str) -> list[str]:
        return [x["code"] for x in client.get(base, params=params).json()["integration_automations"]]

    assert codes(status="paused") == ["a"] and codes(status="ACTIVE") == ["b"]
    assert codes(direction="EXPORT") == ["b"] and codes(applies_to="customer") == ["a"]
    assert codes(sort="name") == ["b", "a"] and codes(sort="-code") == ["b", "a"]
    assert codes(sort="next_run_at,name") in (["a", "b"], ["b", "a"])
    assert b["code"] == "b"
