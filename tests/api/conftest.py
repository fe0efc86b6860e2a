"""API fixtures: a TestClient with the bearer token, and helpers that create through the API itself."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.main import app
from models.settings import get_settings
from models.tables import Base
from tests.api import payloads
from tests.conftest import TEST_API_TOKEN

AUTH = {"Authorization": f"Bearer {TEST_API_TOKEN}"}


@pytest.fixture()
def client(db: Session, redis_url: str) -> Iterator[TestClient]:
    """The app with the test token on every request; tables are emptied after the test (via `db`)."""
    with TestClient(app, headers=AUTH) as test_client:
        yield test_client
    app.dependency_overrides.clear()


@pytest.fixture()
def anonymous(db: Session) -> Iterator[TestClient]:
    """The app without any Authorization header."""
    with TestClient(app) as test_client:
        yield test_client


def row_counts(db: Session) -> dict[str, int]:
    """Rows per table: a rejected request must leave these unchanged."""
    db.rollback()
    return {t.name: db.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}


def create_connection(client: TestClient, **fields: Any) -> dict[str, Any]:
    """POST the seed 000 connection (with overrides); the inner connection object."""
    response = client.post("/api/v3/integration", json={**payloads.CONNECTION, **fields})
    assert response.status_code == 200, response.text
    return response.json()["integration"]["integration_connection"]


def create_partner_function(client: TestClient, connection_uuid: str, **fields: Any) -> dict[str, Any]:
    """POST the seed 000 partner function (with overrides); the partner function object."""
    body = copy.deepcopy(payloads.PARTNER_FUNCTION)
    body["partner_function"].update(fields)
    response = client.post(f"/api/v3/integration/{connection_uuid}/partner-function/", json=body)
    assert response.status_code == 200, response.text
    return response.json()["partner_function"]


def create_automation(client: TestClient, connection_uuid: str, perform_action: str,
                      **details: Any) -> dict[str, Any]:
    """POST the seed 000 automation naming `perform_action`; the automation object."""
    body = payloads.automation_payload(perform_action, **details)
    response = client.post(f"/api/v3/integration/{connection_uuid}/automation", json=body)
    assert response.status_code == 200, response.text
    return response.json()["integration_automation"]


@pytest.fixture()
def setup(client: TestClient) -> dict[str, Any]:
    """A connection, its partner function and an automation, all created through the API."""
    connection = create_connection(client)
    pf = create_partner_function(client, connection["uuid"])
    automation = create_automation(client, connection["uuid"], pf["uuid"])
    return {"connection": connection, "pf": pf, "automation": automation,
            "base": f"/api/v3/integration/{connection['uuid']}"}


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Run with some settings changed, then put everything back."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
