"""A connection whose stored credentials this SECRET_KEY cannot decrypt says so, rather than `****`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import crypto
from models.connection import Connection
from tests.api.conftest import create_connection


def test_unreadable_credentials_are_named_not_masked(client: TestClient, db: Session) -> None:
    created = create_connection(client)
    assert created["access_token"].startswith("****")
    row = db.scalars(select(Connection).where(Connection.uuid == created["uuid"])).one()
    row.access_token_enc = crypto.encrypt("token-of-another-stack", "another-stacks-secret-key")
    db.commit()
    body = client.get(f"/api/v2/integration-connections/{created['uuid']}").json()
    shown = body["integration_connection"]
    assert shown["access_token"] == "stored credentials cannot be decrypted with this SECRET_KEY"
    assert shown["refresh_token"].startswith("****")  # the readable ones stay masked
