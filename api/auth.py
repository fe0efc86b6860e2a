"""Bearer-token security: every /api route but the token exchange needs `Authorization: Bearer <API_TOKEN>`.

Checked in a middleware, before the body is read, so an unauthenticated request learns nothing (not
even whether its JSON parses). API_TOKEN may hold several comma-separated tokens, so a token is rotated
without downtime (add the new one, move the clients, drop the old one): the presented token is compared
with every one in constant time, and the log names which one matched by its position, never its value.
The token exchange is the SDK's own login flow; it hands out the first token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import one_error
from api.openapi import TOKEN_REQUEST_FIELDS, errors
from models.schemas.runs import TokenResponse
from models.settings import api_tokens, get_settings

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/oauth2/token"
PROTECTED_PREFIX = "/api/"
TOKEN_LIFETIME_S = 3600
CHALLENGE = {"WWW-Authenticate": "Bearer"}

router = APIRouter(tags=["auth"])
_seen: set[tuple[int, int]] = set()


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison; an empty configured token matches nothing."""
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


@lru_cache(maxsize=8)
def _digests(configured: str) -> tuple[bytes, ...]:
    """SHA-256 of each configured token: compared digest to digest, so the time depends on no length."""
    return tuple(hashlib.sha256(t.encode()).digest() for t in api_tokens(configured))


def matching_token(presented: str, configured: str) -> int | None:
    """The 1-based position of the configured token `presented` is, or None.

    Every configured token is compared, in constant time each, whatever matched: the time taken says
    neither which token matched nor how much of one did.
    """
    if not presented:
        return None
    digest = hashlib.sha256(presented.encode()).digest()
    found = None
    for index, expected in enumerate(_digests(configured), start=1):
        if hmac.compare_digest(digest, expected) and found is None:
            found = index
    return found


def bearer_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of an `Authorization: Bearer ...` header, or ""."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def _log_use(index: int, configured: str) -> None:
    """Name the token used: at INFO the first time this process sees it, at DEBUG every time."""
    count = len(_digests(configured))
    if (index, count) not in _seen:
        _seen.add((index, count))
        log.info("API token #%d of %d used (first use since start)", index, count)
    log.debug("request authenticated with API token #%d of %d", index, count)


class BearerAuth:
    """ASGI middleware refusing /api/* (but the token exchange) without one of the configured tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(PROTECTED_PREFIX) and path != TOKEN_PATH:
            configured = get_settings().api_token
            index = matching_token(bearer_of(scope.get("headers", [])), configured)
            if index is None:
                response = one_error(401, "authorization", "missing or invalid bearer token", CHALLENGE)
                await response(scope, receive, send)
                return
            _log_use(index, configured)
        await self.app(scope, receive, send)


def refresh_token_for(api_token: str) -> str:
    """An opaque refresh token derived from the API token (it reveals nothing about it)."""
    return hmac.new(api_token.encode(), b"automation-worker/refresh-token", hashlib.sha256).hexdigest()


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """client_id and client_secret of an `Authorization: Basic` header (RFC 6749 2.3.1), if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, client_secret = decoded.partition(":")
    return unquote(client_id), unquote(client_secret)


async def _body_fields(request: Request) -> dict[str, Any] | None:
    """The exchange's fields, sent as JSON (the SDK) or as a form (OAuth2 clients); None when the body is
    JSON but not an object."""
    raw = await request.body()
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _credentials(basic: tuple[str, str] | None, fields: dict[str, Any] | None) -> tuple[str, str]:
    """The client credentials: the Basic header's, else the body's (strings only)."""
    if basic is not None:
        return basic
    fields = fields or {}
    client_id, client_secret = fields.get("client_id", ""), fields.get("client_secret", "")
    return (client_id if isinstance(client_id, str) else "", client_secret if isinstance(client_secret, str)
            else "")


BODY_DOC = {"required": False, "content": {
    media: {"schema": {"$ref": "#/components/schemas/TokenRequest"}}
    for media in ("application/json", "application/x-www-form-urlencoded")
}}


@router.post(TOKEN_PATH, response_model=TokenResponse, operation_id="exchange_token",
             responses=errors(401, 422, e401="wrong client credentials, or the exchange is not enabled",
                              e422="the body is not a JSON object (or its fields are not strings)"),
             openapi_extra={"requestBody": BODY_DOC})
async def exchange_token(request: Request) -> Any:
    """Exchange API_CLIENT_ID / API_CLIENT_SECRET for the bearer token (the SDK logs in this way).

    The credentials come in an `Authorization: Basic` header (RFC 6749 client_secret_basic) or in the
    body, JSON (the SDK) or a form; the header wins when both are sent. grant_type is not checked.
    """
    settings = get_settings()
    basic, fields = _basic_credentials(request), await _body_fields(request)
    client_id, client_secret = _credentials(basic, fields)
    tokens = api_tokens(settings.api_token)
    if not (settings.api_client_id and settings.api_client_secret and tokens):
        log.warning("token exchange refused: API_CLIENT_ID, API_CLIENT_SECRET or API_TOKEN is not set")
        return one_error(401, "client_id", "token exchange is not enabled on this server", CHALLENGE)
    if not (token_matches(client_id, settings.api_client_id)
            & token_matches(client_secret, settings.api_client_secret)):
        log.warning("token exchange refused: wrong client credentials")
        return one_error(401, "client_secret", "invalid client credentials", CHALLENGE)
    problem = _body_problem(fields)
    if problem:
        return one_error(422, *problem)
    first = tokens[0]
    token = TokenResponse(access_token=first, token_type="Bearer", expires_in=TOKEN_LIFETIME_S,
                          refresh_token=refresh_token_for(first))
    return JSONResponse(token.model_dump(), headers={"Cache-Control": "no-store"})


def _body_problem(fields: dict[str, Any] | None) -> tuple[str, str] | None:
    """A body the document refuses (authenticated clients only learn this): not an object, or a
    documented field that is not a string."""
    if fields is None:
        return "body", "must be a JSON object (or a form)"
    for name in TOKEN_REQUEST_FIELDS:
        if name in fields and not isinstance(fields[name], str):
            return name, "must be a string"
    return None
