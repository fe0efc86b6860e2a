"""OAuth refresh of a connection's tokens after a 401: one worker refreshes, the others wait and re-read.

Rotated tokens are stored encrypted; a refresh refused with `invalid_grant` marks the connection as
needing reconnection (ReconnectRequiredError), which later runs see and skip on.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from models import keys
from models.connection import Connection
from models.db import session_scope
from models.errors import PermanentIntegrationError, ReconnectRequiredError, TransientIntegrationError
from models.settings import get_settings
from tasks.integration_client import Endpoint, json_body, raise_for_status, send, session_for
from tasks.locks import Lock

log = logging.getLogger(__name__)
REFRESH_LOCK_TTL_S = 30.0
_WAIT_STEP_S = 0.05


@dataclass(frozen=True)
class Tokens:
    """A usable access token and its type (the refresh token never leaves this module)."""

    access_token: str | None
    token_type: str


def refresh(endpoint: Endpoint, used_token: str | None) -> Tokens:
    """Fresh tokens for the connection: refresh them ourselves, or wait for the worker doing it."""
    lock = Lock(keys.refresh_lock(endpoint.connection_uuid), REFRESH_LOCK_TTL_S)
    token = uuid.uuid4().hex
    if lock.acquire(token):
        try:
            return _refresh_holding_lock(endpoint, used_token)
        finally:
            lock.release(token)
    return _await_other_refresh(endpoint, lock, used_token)


def _refresh_holding_lock(endpoint: Endpoint, used_token: str | None) -> Tokens:
    """Re-read first (another worker may have just refreshed), else call the token endpoint and store."""
    key = get_settings().secret_key
    with session_scope() as db:
        conn = _connection(db, endpoint.connection_uuid)
        current = conn.secret("access_token", key)
        if current != used_token:
            return Tokens(current, conn.token_type or "Bearer")
        form = {"grant_type": "refresh_token", "client_id": conn.client_id or "",
                "client_secret": conn.secret("client_secret", key) or "",
                "refresh_token": conn.secret("refresh_token", key) or ""}
    body = _post_refresh(endpoint, form)
    return _store(endpoint.connection_uuid, body)


def _post_refresh(endpoint: Endpoint, form: dict[str, str]) -> dict[str, Any]:
    """POST {account_server}{token_path}; invalid_grant marks the connection for reconnection."""
    what = f"token refresh of connection {endpoint.connection_uuid}"
    resp = send(session_for(endpoint.connection_uuid), "POST", endpoint.url("token_path"), data=form)
    if resp.status_code in (400, 401) and _error_code(resp) == "invalid_grant":
        _mark_needs_reconnect(endpoint.connection_uuid)
        raise ReconnectRequiredError(
            f"connection {endpoint.connection_uuid} needs reconnection: its refresh token was refused "
            "(invalid_grant)")
    raise_for_status(resp, what)
    body = json_body(resp, what)
    if not isinstance(body, dict) or not body.get("access_token"):
        raise PermanentIntegrationError(f"{what}: the response has no access_token")
    return body


def _store(connection_uuid: str, body: dict[str, Any]) -> Tokens:
    """Save the rotated tokens encrypted (a refresh token is kept when none is returned)."""
    key = get_settings().secret_key
    with session_scope() as db:
        conn = _connection(db, connection_uuid)
        conn.set_secret("access_token", str(body["access_token"]), key)
        if body.get("refresh_token"):
            conn.set_secret("refresh_token", str(body["refresh_token"]), key)
        conn.token_type = str(body.get("token_type") or conn.token_type or "Bearer")
        if body.get("expires_in") is not None:
            conn.expires_in = str(body["expires_in"])
        log.info("connection %s: tokens refreshed and stored", connection_uuid)
        return Tokens(str(body["access_token"]), conn.token_type)


def _await_other_refresh(endpoint: Endpoint, lock: Lock, used_token: str | None) -> Tokens:
    """Wait (bounded) for the refreshing worker to finish, then use what it stored."""
    deadline = time.monotonic() + REFRESH_LOCK_TTL_S
    while lock.holder() is not None and time.monotonic() < deadline:
        time.sleep(_WAIT_STEP_S)
    key = get_settings().secret_key
    with session_scope() as db:
        conn = _connection(db, endpoint.connection_uuid)
        if conn.needs_reconnect:
            raise ReconnectRequiredError(f"connection {endpoint.connection_uuid} needs reconnection")
        current = conn.secret("access_token", key)
        if current != used_token:
            return Tokens(current, conn.token_type or "Bearer")
    raise TransientIntegrationError(f"connection {endpoint.connection_uuid}: another worker's token refresh "
                                    "did not produce a new token")


def _mark_needs_reconnect(connection_uuid: str) -> None:
    """Flag the connection; runs skip it until an operator reconnects it."""
    with session_scope() as db:
        _connection(db, connection_uuid).needs_reconnect = True
    log.warning("connection %s: refresh refused (invalid_grant), marked as needing reconnection",
                connection_uuid)


def _connection(db: Any, connection_uuid: str) -> Connection:
    """The connection row, or a permanent error if it was deleted meanwhile."""
    conn = db.scalar(select(Connection).where(Connection.uuid == connection_uuid))
    if conn is None:
        raise PermanentIntegrationError(f"connection {connection_uuid} no longer exists")
    return conn


def _error_code(resp: Any) -> str | None:
    """The OAuth `error` code of a refused refresh, if the body has one."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
