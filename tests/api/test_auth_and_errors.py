"""Security and the error shape: bearer token on every /api route, the SDK's token exchange, 4xx bodies."""

from __future__ import annotations

import logging

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.auth import TOKEN_PATH
from api.main import app
from api.routes import automations, connections, operations, partner_functions
from tests.api import payloads
from tests.api.conftest import create_connection, environment, row_counts
from tests.conftest import TEST_API_TOKEN

UNKNOWN = "6d9f0b9e-7a43-4a4a-9d4e-9f3c2c1d0e11"
UNAUTHORIZED = {"errors": [{"field": "authorization", "message": "missing or invalid bearer token"}]}


def _protected_routes() -> list[tuple[str, str]]:
    """Every (method, path) under /api but the token exchange, path parameters filled in."""
    out = []
    modules = (connections, partner_functions, automations, operations)
    routes = [r for mod in modules for r in mod.router.routes]
    for route in routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/") and route.path != TOKEN_PATH:
            path = route.path
            for name in ("connection_uuid", "partner_function_uuid", "automation_uuid", "run_uuid"):
                path = path.replace("{" + name + "}", UNKNOWN)
            out.extend((method, path) for method in route.methods)
    return out


def test_every_api_route_needs_the_token(anonymous: TestClient) -> None:
    routes = _protected_routes()
    assert len(routes) >= 25
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TEST_API_TOKEN}"}):
            response = anonymous.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path)
            assert response.json() == UNAUTHORIZED
            assert response.headers["www-authenticate"] == "Bearer"


def test_401_comes_before_body_parsing(anonymous: TestClient, db: Session) -> None:
    response = anonymous.post("/api/v3/integration", content=b"{not json",
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_open_routes(anonymous: TestClient) -> None:
    for path in ("/health", "/docs", "/openapi.json"):
        assert anonymous.get(path).status_code == 200, path


def test_an_empty_api_token_refuses_everything_and_warns(db: Session,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with environment(API_TOKEN=""), caplog.at_level(logging.WARNING), TestClient(app) as anonymous:
        assert anonymous.get("/api/v2/integration-connections",
                             headers={"Authorization": "Bearer "}).status_code == 401
        assert anonymous.get("/api/v2/integration-connections",
                             headers={"Authorization": "Bearer"}).status_code == 401
    assert "API_TOKEN is empty" in caplog.text


def test_token_exchange(anonymous: TestClient) -> None:
    body = {"grant_type": "client_credentials", "client_id": "sdk-client", "client_secret": "sdk-secret",
            "redirect_uri": "", "exsited_url": "http://127.0.0.1"}
    disabled = anonymous.post(TOKEN_PATH, json=body)
    assert disabled.status_code == 401 and disabled.json()["errors"][0]["field"] == "client_id"
    with environment(API_CLIENT_ID="sdk-client", API_CLIENT_SECRET="sdk-secret"):
        token = anonymous.post(TOKEN_PATH, json=body)
        assert token.status_code == 200
        assert token.json()["access_token"] == TEST_API_TOKEN and token.json()["refresh_token"]
        assert token.json()["token_type"] == "Bearer" and token.json()["expires_in"] > 0
        form = anonymous.post(TOKEN_PATH, data={"client_id": "sdk-client", "client_secret": "sdk-secret"})
        assert form.status_code == 200
        wrong = anonymous.post(TOKEN_PATH, json={**body, "client_secret": "guess"})
        assert wrong.status_code == 401 and wrong.json()["errors"][0]["field"] == "client_secret"
        assert anonymous.post(TOKEN_PATH, content=b"[]").status_code == 401


def test_invalid_json_is_422_on_body(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    before = row_counts(db)
    for path in ("/api/v3/integration", f"/api/v3/integration/{conn['uuid']}/automation",
                 f"/api/v3/integration/{conn['uuid']}/partner-function/"):
        response = client.post(path, content=b'{"provider": ', headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        assert response.json() == {"errors": [{"field": "body", "message": "is not valid JSON"}]}
    nested = client.post("/api/v3/integration", content=b"[" * 100_000,
                         headers={"Content-Type": "application/json"})
    assert nested.status_code == 422 and nested.json()["errors"][0]["field"] == "body"
    missing = client.post("/api/v3/integration")
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body"
    assert client.post("/api/v3/integration", json=[payloads.CONNECTION]).status_code == 422
    assert row_counts(db) == before


def test_unknown_routes_and_methods_use_the_error_shape(client: TestClient) -> None:
    missing = client.get("/api/v3/nothing-here")
    assert missing.status_code == 404 and list(missing.json()) == ["errors"]
    wrong_method = client.put("/api/v3/integration")
    assert wrong_method.status_code == 405 and list(wrong_method.json()) == ["errors"]


def test_repeated_slashes_are_collapsed_before_auth(client: TestClient, anonymous: TestClient) -> None:
    response = client.post("http://testserver//api/v3//integration", json=payloads.CONNECTION)
    assert response.status_code == 200
    assert anonymous.get("http://testserver//api/v2/integration-connections").status_code == 401


def test_no_secret_in_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        conn = create_connection(client)
        client.get(f"/api/v2/integration-connections/{conn['uuid']}")
    for secret in ("qbclientsecret456", "qbrefreshtoken789", "Str0ngP@ssw0rd!", TEST_API_TOKEN):
        assert secret not in caplog.text


def test_the_sandbox_is_mounted_outside_our_bearer_auth(anonymous: TestClient) -> None:
    response = anonymous.get("/sandbox/objects/supplier")
    assert response.status_code != 404 and response.json() != UNAUTHORIZED
