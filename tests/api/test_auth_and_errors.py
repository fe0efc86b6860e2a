"""Security and the error shape: bearer token on every /api route, the SDK's token exchange, 4xx bodies."""

from __future__ import annotations

import logging

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.auth import TOKEN_PATH, matching_token
from api.main import app
from api.routes import automations, connections, operations, partner_functions
from models.errors import ConfigurationError
from models.settings import DEV_SECRET_KEY
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


@pytest.mark.parametrize(("settings", "message"), [
    ({"API_TOKEN": ""}, "API_TOKEN is not set"),
    ({"API_TOKEN": " , "}, "API_TOKEN is not set"),
    ({"SECRET_KEY": DEV_SECRET_KEY}, "SECRET_KEY is the development default"),
    ({"SECRET_KEY": ""}, "SECRET_KEY is empty"),
])
def test_the_api_refuses_to_start_without_its_secrets(db: Session, settings: dict[str, str], message: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    refusal = pytest.raises(ConfigurationError, match=message)
    with environment(**settings), refusal as refused, TestClient(app):
        pass
    assert str(refused.value).startswith("the API refuses to start: ")
    assert "`make run` generates both" in str(refused.value)
    assert "refuses to start" in caplog.text


def test_an_empty_token_matches_nothing() -> None:
    for configured in ("", " ", ",", " , "):
        assert matching_token("", configured) is None and matching_token(" ", configured) is None
    assert matching_token("", "a,b") is None


def test_several_tokens_rotate_without_downtime(anonymous: TestClient,
                                                caplog: pytest.LogCaptureFixture) -> None:
    url = "/api/v2/integration-connections"
    with environment(API_TOKEN="new-token-2026, old-token-2025"), caplog.at_level(logging.DEBUG, "api.auth"):
        for token, index in (("new-token-2026", 1), ("old-token-2025", 2)):
            caplog.clear()
            response = anonymous.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, token
            assert f"API token #{index} of 2" in caplog.text
        for wrong in ("new-token-2026,old-token-2025", "new-token", "old-token-2025x", " ", TEST_API_TOKEN):
            assert anonymous.get(url, headers={"Authorization": f"Bearer {wrong}"}).status_code == 401, wrong
        assert "new-token-2026" not in caplog.text and "old-token-2025" not in caplog.text
    assert matching_token("b", "a,b,c") == 2 and matching_token("c", " a , b , c ") == 3


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
        basic = anonymous.post(TOKEN_PATH, auth=("sdk-client", "sdk-secret"),
                               data={"grant_type": "client_credentials"})
        assert basic.status_code == 200 and basic.json()["access_token"] == TEST_API_TOKEN
        assert anonymous.post(TOKEN_PATH, auth=("sdk-client", "guess")).status_code == 401
        not_an_object = anonymous.post(TOKEN_PATH, auth=("sdk-client", "sdk-secret"), content=b"[]",
                                       headers={"Content-Type": "application/json"})
        assert not_an_object.status_code == 422 and not_an_object.json()["errors"][0]["field"] == "body"
    with environment(API_CLIENT_ID="sdk-client", API_CLIENT_SECRET="sdk-secret", API_TOKEN="first,second"):
        assert anonymous.post(TOKEN_PATH, json=body).json()["access_token"] == "first"


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
    assert wrong_method.headers["allow"] == "POST, OPTIONS"


RESOURCES = {
    "/api/v3/integration": "POST",
    "/api/v2/integration-connections": "GET",
    f"/api/v3/integration/{UNKNOWN}": "PATCH, DELETE",
    f"/api/v3/integration/{UNKNOWN}/partner-function/": "GET, POST",
    f"/api/v3/integration/{UNKNOWN}/partner-function/{UNKNOWN}": "GET, PATCH",
    f"/api/v3/integration/{UNKNOWN}/automation": "GET, POST",
    f"/api/v3/integration/{UNKNOWN}/automation/{UNKNOWN}": "GET, PATCH, DELETE",
    f"/api/v3/integration/{UNKNOWN}/configuration": "GET, PATCH",
    f"/api/v3/integration/{UNKNOWN}/automation/{UNKNOWN}/run": "POST",
    f"/api/v3/runs/{UNKNOWN}": "GET",
    "/health": "GET",
}


@pytest.mark.parametrize(("path", "methods"), RESOURCES.items())
def test_options_and_405_list_exactly_the_resources_methods(client: TestClient, path: str,
                                                             methods: str) -> None:
    options = client.options(path)
    assert options.status_code == 204 and options.headers["allow"] == f"{methods}, OPTIONS"
    for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - set(methods.split(", ")):
        refused = client.request(method, path, json={})
        assert refused.status_code == 405, (method, path)
        assert refused.headers["allow"] == f"{methods}, OPTIONS"
        assert refused.json()["errors"][0]["field"] == "path"


def test_every_documented_path_answers_options_with_its_methods(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, served in document["paths"].items():
        concrete = path
        for name in ("connection_uuid", "partner_function_uuid", "automation_uuid", "run_uuid"):
            concrete = concrete.replace("{" + name + "}", UNKNOWN)
        allow = client.options(concrete).headers["allow"].split(", ")
        assert set(allow) == {m.upper() for m in served} | {"OPTIONS"}, path


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
