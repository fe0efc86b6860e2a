"""Configuration: the seed 001 PATCH, GET `{"integration": ...}`, JSON merge patch (RFC 7386)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from models.store.configuration import merge_patch
from tests.api import payloads
from tests.api.conftest import create_connection, row_counts

UPDATED = {"message": "Configuration has been updated successfully"}


def test_seed_patch_then_get(client: TestClient) -> None:
    conn = create_connection(client)
    url = f"/api/v3/integration/{conn['uuid']}/configuration"
    assert client.get(url).json() == {"integration": {}}
    response = client.patch(url, json=payloads.CONFIGURATION)
    assert response.status_code == 200 and response.json() == UPDATED
    stored = client.get(url).json()["integration"]
    export = stored["account"]["export"]
    assert export["account_receivable_mapping"]["mappings"][1]["target"] == "TARGET_LABEL_2"
    assert "default_tax" not in stored["account"]["export"]  # null removes a key (RFC 7386)
    assert stored["transaction"] == payloads.CONFIGURATION["transaction"]


def test_patches_merge(client: TestClient) -> None:
    conn = create_connection(client)
    url = f"/api/v3/integration/{conn['uuid']}/configuration"
    client.patch(url, json=payloads.CONFIGURATION)
    client.patch(url, json={"account": {"export": {"sync_to_xero": "false", "tax_mapping": None}},
                            "item": {"enabled": "true"}})
    stored = client.get(url).json()["integration"]
    assert stored["account"]["export"]["sync_to_xero"] == "false"
    assert "tax_mapping" not in stored["account"]["export"]
    assert stored["account"]["import"] == payloads.CONFIGURATION["account"]["import"]
    assert stored["item"] == {"enabled": "true"}


@pytest.mark.parametrize(("target", "patch", "result"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_follows_rfc_7386(target: dict[str, object], patch: dict[str, object],
                                      result: dict[str, object]) -> None:
    assert merge_patch(target, patch) == result


def test_rejections(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    url = f"/api/v3/integration/{conn['uuid']}/configuration"
    before = row_counts(db)
    for body in ([1, 2], "text", 3):
        response = client.patch(url, json=body)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body"
    bad = client.patch(url, json={"account": {"name": "a\x00b"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "account.name"
    assert client.patch(url, content=b"{", headers={"Content-Type": "application/json"}).status_code == 422
    missing = "/api/v3/integration/6d9f0b9e-7a43-4a4a-9d4e-9f3c2c1d0e11/configuration"
    assert client.patch(missing, json={}).status_code == 404 and client.get(missing).status_code == 404
    assert row_counts(db) == before
