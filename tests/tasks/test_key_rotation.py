"""SECRET_KEY rotation: several keys (the first encrypts, all decrypt), `rotate-credentials` re-encrypts every
credential under the first, and a credential no key decrypts fails its run with a clear reason, one log line
and no traceback."""

from __future__ import annotations

import logging

import pytest
import redis
from sqlalchemy.orm import Session

from models import crypto
from models.connection import SECRET_FIELDS, Connection
from models.errors import CredentialError
from models.settings import get_settings
from tasks.run import execute
from tests.conftest import TEST_SECRET_KEY
from tests.support.factories import make_connection
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, fresh, record, slot
from worker.cli.main import main

pytest_plugins = ["tests.support.run_support"]
NEW_KEY = "the-new-secret-key-of-the-rotation"


def test_first_key_encrypts_every_key_decrypts() -> None:
    old = crypto.encrypt("token-1234", "old-key")
    assert crypto.decrypt(old, "new-key, old-key") == "token-1234"
    fresh_value = crypto.encrypt("token-5678", "new-key,old-key")
    assert crypto.decrypt(fresh_value, "new-key") == "token-5678"
    with pytest.raises(CredentialError, match="cannot be decrypted with this SECRET_KEY"):
        crypto.decrypt(fresh_value, "old-key")
    rotated = crypto.rotate(old, "new-key,old-key")
    assert rotated != old and crypto.decrypt(rotated, "new-key") == "token-1234"


def _plaintexts(db: Session, conn: Connection, key: str) -> dict[str, str | None]:
    row = fresh(db, conn)
    return {name: row.secret(name, key) for name in SECRET_FIELDS}


def test_rotation_keeps_every_credential_readable_and_runs_succeed(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    other = make_connection(db, remote_instance_id="tenant-2", access_token="other-token-9876")
    db.commit()
    before = {c.uuid: _plaintexts(db, c, TEST_SECRET_KEY) for c in (auto.connection, other)}

    monkeypatch.setattr(get_settings(), "secret_key", f"{NEW_KEY},{TEST_SECRET_KEY}")
    assert main(["rotate-credentials"]) == 0
    assert "re-encrypted 8 credentials of 2 connections with the first of 2 SECRET_KEY keys" in \
        capsys.readouterr().out
    monkeypatch.setattr(get_settings(), "secret_key", NEW_KEY)  # the old key dropped
    for conn in (auto.connection, other):
        assert _plaintexts(db, conn, NEW_KEY) == before[conn.uuid]
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded" and summary["records_sent"] == 1, summary
    assert server.invocations()[0].authorization == "Bearer access-token-abcd"


def test_rotation_with_an_unreadable_credential_changes_nothing(
        db: Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    readable = make_connection(db, remote_instance_id="tenant-1")
    lost = make_connection(db, remote_instance_id="tenant-2")
    lost.access_token_enc = crypto.encrypt("lost-token-1111", "a-key-nobody-has")
    db.commit()
    stored = fresh(db, readable).access_token_enc
    monkeypatch.setattr(get_settings(), "secret_key", f"{NEW_KEY},{TEST_SECRET_KEY}")
    assert main(["rotate-credentials"]) == 1
    err = capsys.readouterr().err
    assert f"connection {lost.uuid} (access_token): stored credentials cannot be decrypted with this " \
           "SECRET_KEY; nothing was changed" in err and "Traceback" not in err
    assert fresh(db, readable).access_token_enc == stored


def test_unreadable_credentials_fail_the_run_with_the_reason_and_one_line(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    conn = fresh(db, auto.connection)
    for column in SECRET_FIELDS.values():  # encrypted by a stack with another SECRET_KEY
        setattr(conn, column, crypto.encrypt("elsewhere-token-2222", "another-stacks-key"))
    db.commit()
    with caplog.at_level(logging.INFO):
        summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "failed"
    assert summary["reason"] == "stored credentials cannot be decrypted with this SECRET_KEY"
    assert server.invocations() == [] and server.state.fetches == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    assert [r for r in caplog.records if "run end" in r.getMessage() and "cannot be decrypted" in
            r.getMessage()]
