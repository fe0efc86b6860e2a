"""The integration API client: paths per connection, the retry policy, and the OAuth refresh flow."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import redis
import requests
from sqlalchemy.orm import Session

from models.connection import Connection
from models.db import session_scope
from models.errors import PermanentIntegrationError, ReconnectRequiredError, TransientIntegrationError
from models.settings import get_settings
from tasks import tokens
from tasks.integration_client import IntegrationClient
from tasks.retry import RetryPolicy, parse_retry_after
from tasks.run import execute
from tasks.transport import DEFAULT_PATHS, Endpoint, connection_paths, raise_for_status, send
from tests.support.factories import make_connection
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import (
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    definitions,
    fresh,
    load_automation,
    record,
    slot,
)

pytest_plugins = ["tests.support.run_support"]


def test_paths_are_overridable_through_supporting_fields() -> None:
    paths = connection_paths('{"region": "US", "objects_path": "/v2/{applies_to}/list"}')
    assert paths == {**DEFAULT_PATHS, "objects_path": "/v2/{applies_to}/list"}
    assert connection_paths("not json") == DEFAULT_PATHS


def test_a_sandbox_connection_without_api_domain_uses_the_sandbox(db: Session, fast: None) -> None:
    conn = make_connection(db, provider="SANDBOX", api_domain="", account_server=None)
    endpoint = Endpoint.of(conn)
    assert endpoint.api_base == get_settings().sandbox_url.rstrip("/")
    assert endpoint.url("token_path") == get_settings().sandbox_url.rstrip("/") + "/oauth/token"


def test_full_jitter_backoff_and_retry_after() -> None:
    policy = RetryPolicy(attempts=5, base_s=2.0, cap_s=60.0)
    delays = [policy.delay_s(n) for n in range(8) for _ in range(50)]
    assert all(0 <= d <= 60 for d in delays) and max(delays) > 30
    assert all(policy.delay_s(0) <= 2.0 for _ in range(50))
    assert policy.delay_s(0, retry_after_s=30.0) == 30.0  # the larger wins
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after("soon") is None


def test_a_401_refreshes_the_tokens_stores_them_encrypted_and_retries_once(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    server.require_tokens({"expired-token"}, refresh=REFRESH_TOKEN)  # ours is no longer accepted
    auto = definitions(db, server)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded" and server.state.refreshes == 1
    conn = fresh(db, auto.connection)
    key = get_settings().secret_key
    assert conn.secret("access_token", key) == "access-1" and conn.secret("refresh_token", key) == "refresh-1"
    assert "access-1" not in (conn.access_token_enc or "")
    assert server.invocations()[0].authorization == "Bearer access-1"
    assert "access-1" not in str(summary) and ACCESS_TOKEN not in str(summary)


def test_invalid_grant_marks_the_connection_for_reconnection_and_fails_the_run(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    server.require_tokens({"someone-else"}, refresh="another-refresh-token")
    auto = definitions(db, server)
    summary = execute(auto.uuid, slot(1).isoformat())
    assert summary["status"] == "failed"
    assert summary["reason"] == "connection needs reconnection: the refresh token was refused (invalid_grant)"
    assert fresh(db, auto.connection).needs_reconnect is True
    later = execute(auto.uuid, slot(2).isoformat())
    assert later["status"] == "skipped" and "reconnection" in later["reason"]


def test_concurrent_401s_refresh_once(db: Session, server: IntegrationServer, fast: None,
                                      rclient: redis.Redis) -> None:
    server.require_tokens({"expired-token"}, refresh=REFRESH_TOKEN)
    auto = definitions(db, server)
    results: list[str | None] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client = IntegrationClient.for_connection(fresh_conn())
            client.get_json("objects_path", "fetch", {}, applies_to="supplier")
            results.append(client._access_token)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def fresh_conn() -> Connection:
        with session_scope() as s:
            a = load_automation(s, auto.uuid)
            assert a is not None
            return a.connection

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors and results == ["access-1"] * 6
    assert server.state.refreshes == 1


def test_refresh_by_another_worker_is_reused(db: Session, server: IntegrationServer, fast: None,
                                             rclient: redis.Redis) -> None:
    auto = definitions(db, server)
    endpoint = Endpoint.of(auto.connection)
    conn = fresh(db, auto.connection)
    conn.set_secret("access_token", "rotated-elsewhere", get_settings().secret_key)
    db.commit()
    got = tokens.refresh(endpoint, used_token=ACCESS_TOKEN)
    assert got.access_token == "rotated-elsewhere" and server.state.refreshes == 0


def test_reconnect_error_is_permanent(db: Session, server: IntegrationServer, fast: None,
                                      rclient: redis.Redis) -> None:
    server.require_tokens(set(), refresh="x")
    auto = definitions(db, server)
    with pytest.raises(ReconnectRequiredError):
        tokens.refresh(Endpoint.of(auto.connection), used_token=ACCESS_TOKEN)


def _response(status: int, body: str, content_type: str = "application/json") -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    resp.headers["Content-Type"] = content_type
    return resp


@pytest.mark.parametrize(("status", "raised"), [(400, PermanentIntegrationError),
                                                 (502, TransientIntegrationError)])
def test_an_error_body_goes_into_the_error_text_redacted(status: int, raised: type[Exception]) -> None:
    body = ('{"error": "bad", "request": "client_secret%3Ds3cr3t-1%26refresh_token%3Drt-2", '
            '"echo": "{\\"access_token\\": \\"at-3\\"}", "auth": "Bearer%20bt-4"}')
    with pytest.raises(raised) as caught:
        raise_for_status(_response(status, body), "invoke batch 1/1")
    message = str(caught.value)
    assert message.startswith(f"invoke batch 1/1: HTTP {status}: ") and "bad" in message
    assert not [s for s in ("s3cr3t-1", "rt-2", "at-3", "bt-4") if s in message], message


def test_an_error_body_is_redacted_before_it_is_shortened() -> None:
    body = "x" * 190 + " client_secret=0123456789abcdef"
    with pytest.raises(PermanentIntegrationError) as caught:
        raise_for_status(_response(400, body, "text/plain"), "fetch")
    assert "0123" not in str(caught.value)


def test_a_network_error_names_the_url_without_its_credentials() -> None:
    session = requests.Session()
    with pytest.raises(TransientIntegrationError) as caught:
        send(session, "GET", "http://user:pa55word@127.0.0.1:9/objects/x?api_key=k3y-v4lue&limit=1")
    message = str(caught.value)
    assert "pa55word" not in message and "k3y-v4lue" not in message and "127.0.0.1:9" in message
