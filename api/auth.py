"""Bearer-token security: every /api route but the token exchange needs `Authorization: Bearer <API_TOKEN>`.

Checked in a middleware, before the body is read, so an unauthenticated request learns nothing (not
even whether its JSON parses). The token exchange is the SDK's own login flow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import one_error
from api.schemas.runs import TokenResponse
from models.settings import get_settings

log = logging.getLogger(__name__)

TOKEN_PATH = "/api/v1/oauth2/token"
PROTECTED_PREFIX = "/api/"
TOKEN_LIFETIME_S = 3600
CHALLENGE = {"WWW-Authenticate": "Bearer"}

router = APIRouter(tags=["auth"])


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison; an empty configured token matches nothing."""
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


def bearer_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The token of an `Authorization: Bearer ...` header, or ""."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class BearerAuth:
    """ASGI middleware refusing /api/* (but the token exchange) without the right bearer token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        protected = scope["type"] == "http" and path.startswith(PROTECTED_PREFIX) and path != TOKEN_PATH
        if protected and not token_matches(bearer_of(scope.get("headers", [])), get_settings().api_token):
            response = one_error(401, "authorization", "missing or invalid bearer token", CHALLENGE)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def refresh_token_for(api_token: str) -> str:
    """An opaque refresh token derived from the API token (it reveals nothing about it)."""
    return hmac.new(api_token.encode(), b"automation-worker/refresh-token", hashlib.sha256).hexdigest()


async def _credentials(request: Request) -> dict[str, Any]:
    """The exchange's fields, sent as JSON (the SDK) or as a form (OAuth2 clients)."""
    raw = await request.body()
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@router.post(TOKEN_PATH, response_model=TokenResponse,
             responses={401: {"description": "wrong client credentials or exchange disabled"}})
async def exchange_token(request: Request) -> Any:
    """Exchange API_CLIENT_ID / API_CLIENT_SECRET for the bearer token (the SDK logs in this way)."""
    settings = get_settings()
    data = await _credentials(request)
    client_id, client_secret = str(data.get("client_id", "")), str(data.get("client_secret", ""))
    if not (settings.api_client_id and settings.api_client_secret and settings.api_token):
        log.warning("token exchange refused: API_CLIENT_ID, API_CLIENT_SECRET or API_TOKEN is not set")
        return one_error(401, "client_id", "token exchange is not enabled on this server", CHALLENGE)
    if not (token_matches(client_id, settings.api_client_id)
            & token_matches(client_secret, settings.api_client_secret)):
        log.warning("token exchange refused: wrong client credentials")
        return one_error(401, "client_secret", "invalid client credentials", CHALLENGE)
    token = TokenResponse(access_token=settings.api_token, token_type="Bearer", expires_in=TOKEN_LIFETIME_S,
                          refresh_token=refresh_token_for(settings.api_token))
    return JSONResponse(token.model_dump(), headers={"Cache-Control": "no-store"})
