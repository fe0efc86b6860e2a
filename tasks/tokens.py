"""OAuth refresh of a connection's tokens after a 401: single-flight across every worker process and machine.

One caller at a time refreshes a connection, under a Redis lock whose TTL covers the token POST's connect
and read timeouts plus a margin, kept alive by a heartbeat while the POST is in flight: providers rotate
refresh tokens, so a second POST with the same refresh token would be refused (`invalid_grant`). Every
other caller waits (bounded, longer than the lock lives) and uses what the holder stored.

A refresh refused with `invalid_grant` is believed only after re-reading the stored tokens: if another
worker rotated them meanwhile, those are used. Otherwise the connection is marked as needing reconnection
(ReconnectRequiredError), which later runs see and skip on.

No error raised here carries the token endpoint's body (a provider may echo the request, client secret and
refresh token included): only the HTTP status and OAuth's `error` code.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import redis
import requests
from sqlalchemy import select

from models import keys
from models.connection import Connection
from models.db import session_scope
from models.errors import PermanentIntegrationError, ReconnectRequiredError, TransientIntegrationError
from models.settings import get_settings
from tasks.budget import Budget
from tasks.locks import Heartbeat, Lock
from tasks.transport import Endpoint, json_body, raise_for_status, send, session_for

log = logging.getLogger(__name__)
#: A waiter re-checks the lock after this, growing by half each time up to the cap: no hot polling.
_WAIT_STEP_S = 0.05
_WAIT_STEP_MAX_S = 0.25
#: What an OAuth `error` code looks like (RFC 6749 §5.2 codes are short ASCII words); anything else is
#: not quoted in an error text.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Tokens:
    """A usable access token and its type (the refresh token never leaves this module)."""

    access_token: str | None
    token_type: str


def refresh_lock_ttl_s() -> float:
    """The refresh lock's TTL: the token POST's connect + read timeouts plus REFRESH_LOCK_MARGIN_S.

    The holder's heartbeat extends it every third of that while the POST is in flight, so a live holder
    keeps it however slow the provider; a holder that dies frees it within one TTL.
    """
    s = get_settings()
    return s.http_connect_timeout_s + s.http_read_timeout_s + s.refresh_lock_margin_s


def refresh_wait_s() -> float:
    """How long a caller waits for another's refresh: longer than the lock lives (TTL plus the margin)."""
    return refresh_lock_ttl_s() + get_settings().refresh_lock_margin_s


def refresh(endpoint: Endpoint, used_token: str | None, budget: Budget | None = None) -> Tokens:
    """Fresh tokens for the connection: refresh them ourselves, or wait for the caller doing it.

    `used_token` is the access token that got the 401; the token POST takes a permit of `budget` (the
    connection's, shared by every worker) when one is given. A waiter whose holder finished without storing
    new tokens (its POST failed) takes the lock and tries itself, until the wait's deadline.
    """
    lock = Lock(keys.refresh_lock(endpoint.connection_uuid), refresh_lock_ttl_s())
    deadline = time.monotonic() + refresh_wait_s()
    while True:
        token = uuid.uuid4().hex
        if lock.acquire(token):
            try:
                with Heartbeat(lock, token) as heartbeat:
                    return _refresh_holding_lock(endpoint, used_token, heartbeat, deadline, budget)
            finally:
                _release(lock, token)
        _wait_while_held(lock, deadline)
        stored = _stored_tokens(endpoint.connection_uuid, used_token)
        if stored is not None:
            return stored
        if time.monotonic() >= deadline:
            raise TransientIntegrationError(
                f"connection {endpoint.connection_uuid}: another worker's token refresh did not produce a "
                f"new token within {refresh_wait_s():.0f} s")


def _refresh_holding_lock(endpoint: Endpoint, used_token: str | None, heartbeat: Heartbeat,
                          deadline: float, budget: Budget | None = None) -> Tokens:
    """Re-read first (another worker may have just refreshed), else call the token endpoint and store."""
    stored = _stored_tokens(endpoint.connection_uuid, used_token)
    if stored is not None:
        return stored
    key = get_settings().secret_key
    with session_scope() as db:
        conn = _connection(db, endpoint.connection_uuid)
        form = {"grant_type": "refresh_token", "client_id": conn.client_id or "",
                "client_secret": conn.secret("client_secret", key) or "",
                "refresh_token": conn.secret("refresh_token", key) or ""}
    if not heartbeat.confirm():  # lost already (Redis unreachable, or a TTL shorter than our reads)
        raise TransientIntegrationError(f"connection {endpoint.connection_uuid}: the refresh lock was lost "
                                        "before the token request; not refreshing")
    with budget.permit("token refresh") if budget is not None else nullcontext():
        resp = send(session_for(endpoint.connection_uuid), "POST", endpoint.url("token_path"), data=form)
    if resp.status_code in (400, 401) and _error_code(resp) == "invalid_grant":
        return _after_invalid_grant(endpoint, used_token, form["refresh_token"], heartbeat, deadline)
    body = _token_body(endpoint, resp)
    return _store(endpoint.connection_uuid, body)


def _token_body(endpoint: Endpoint, resp: requests.Response) -> dict[str, Any]:
    """The token response's JSON; a refusal names only the HTTP status and the OAuth error code."""
    what = f"token refresh of connection {endpoint.connection_uuid}"
    code = _error_code(resp)
    raise_for_status(resp, what, detail=f" ({code})" if code else "")
    body = json_body(resp, what)
    if not isinstance(body, dict) or not body.get("access_token"):
        raise PermanentIntegrationError(f"{what}: the response has no access_token")
    return body


def _after_invalid_grant(endpoint: Endpoint, used_token: str | None, used_refresh: str,
                         heartbeat: Heartbeat, deadline: float) -> Tokens:
    """Believe `invalid_grant` only once the stored tokens are seen unchanged (and nobody else refreshing).

    If another worker rotated them while our POST was in flight (our lock had been lost, say), the
    partner refused a refresh token already used: the stored tokens are valid, use them.
    """
    cid = endpoint.connection_uuid
    if not heartbeat.held():
        _wait_while_held(heartbeat.lock, deadline)  # whoever took the lock over may be storing right now
    rotated = _mark_needs_reconnect_unless_rotated(cid, used_token, used_refresh)
    if rotated is not None:
        log.warning("connection %s: the token endpoint refused a refresh token another worker had already "
                    "rotated (invalid_grant); using the tokens it stored", cid)
        return rotated
    raise ReconnectRequiredError(
        f"connection {cid} needs reconnection: its refresh token was refused (invalid_grant)")


def _store(connection_uuid: str, body: dict[str, Any]) -> Tokens:
    """Save the rotated tokens encrypted (a refresh token is kept when none is returned).

    Stored even if our lock was lost meanwhile: the provider has rotated them, the old ones are dead.
    """
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


def _stored_tokens(connection_uuid: str, used_token: str | None) -> Tokens | None:
    """The stored tokens if they differ from the access token that got the 401; a flagged connection
    raises ReconnectRequiredError."""
    key = get_settings().secret_key
    with session_scope() as db:
        conn = _connection(db, connection_uuid)
        if conn.needs_reconnect:
            raise ReconnectRequiredError(f"connection {connection_uuid} needs reconnection")
        current = conn.secret("access_token", key)
        return Tokens(current, conn.token_type or "Bearer") if current != used_token else None


def _mark_needs_reconnect_unless_rotated(connection_uuid: str, used_token: str | None,
                                         used_refresh: str) -> Tokens | None:
    """In one transaction (the row locked where the database can): the stored tokens if either differs
    from the ones we used, else flag the connection; runs skip it until an operator reconnects it."""
    key = get_settings().secret_key
    with session_scope() as db:
        conn = _connection(db, connection_uuid, for_update=True)
        access = conn.secret("access_token", key)
        if access != used_token or (conn.secret("refresh_token", key) or "") != used_refresh:
            return Tokens(access, conn.token_type or "Bearer")
        conn.needs_reconnect = True
    log.warning("connection %s: refresh refused (invalid_grant), marked as needing reconnection",
                connection_uuid)
    return None


def _wait_while_held(lock: Lock, deadline: float) -> None:
    """Sleep while someone holds the lock, until the deadline; the step grows from 50 ms to 250 ms."""
    step = _WAIT_STEP_S
    while time.monotonic() < deadline and lock.holder() is not None:
        time.sleep(min(step, max(0.0, deadline - time.monotonic())))
        step = min(step * 1.5, _WAIT_STEP_MAX_S)


def _release(lock: Lock, token: str) -> None:
    """Free the lock; on a Redis error it is left to its TTL (the outcome is already stored)."""
    try:
        lock.release(token)
    except redis.RedisError as exc:
        log.warning("could not release refresh lock %s (%s); its TTL frees it", lock.key, type(exc).__name__)


def _connection(db: Any, connection_uuid: str, for_update: bool = False) -> Connection:
    """The connection row, or a permanent error if it was deleted meanwhile."""
    stmt = select(Connection).where(Connection.uuid == connection_uuid)
    conn: Connection | None = db.scalar(stmt.with_for_update() if for_update else stmt)
    if conn is None:
        raise PermanentIntegrationError(f"connection {connection_uuid} no longer exists")
    return conn


def _error_code(resp: requests.Response) -> str | None:
    """The OAuth `error` code of a refused refresh, if the body has one that looks like a code."""
    try:
        body = resp.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None
