"""The sandbox integration API: the contract of DESIGN.md with generated records, so a SANDBOX
connection runs end to end without a real provider. Mounted by the API at /sandbox; also runs alone:
`uvicorn sandbox.app:sandbox_app --port 8100`.

Auth: any non-empty bearer token is accepted, except tokens starting with `expired` (401, to show the
refresh flow). `/oauth/token` rotates tokens for any refresh token except `revoked` (invalid_grant).
Invocations are kept in memory (the newest 1,000), de-duplicated by Idempotency-Key.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse

from sandbox import data as sandbox_data

MAX_INVOCATIONS = 1000
sandbox_app = FastAPI(title="Sandbox integration API", version="1.0",
                      description="Generated supplier/customer/item records; records partner invocations.")


class InvocationLog:
    """The newest invocations, one per Idempotency-Key, bounded; thread-safe."""

    def __init__(self, limit: int = MAX_INVOCATIONS) -> None:
        self.limit = limit
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.duplicates = 0

    def add(self, key: str, entry: dict[str, Any]) -> bool:
        """Keep the invocation; False when its key was already applied."""
        with self._lock:
            if key in self._items:
                self.duplicates += 1
                return False
            self._items[key] = entry
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
            return True

    def newest(self, limit: int, partner_function_uuid: str | None) -> list[dict[str, Any]]:
        """The newest first, optionally of one partner function."""
        with self._lock:
            items = list(reversed(self._items.values()))
        if partner_function_uuid:
            items = [i for i in items if i["partner_function_uuid"] == partner_function_uuid]
        return items[:limit]

    def clear(self) -> None:
        """Forget everything (demos, tests)."""
        with self._lock:
            self._items.clear()
            self.duplicates = 0


invocations = InvocationLog()


def _unauthorized(authorization: str | None) -> JSONResponse | None:
    """A 401 unless the bearer token is acceptable."""
    scheme, _, token = (authorization or "").partition(" ")
    if not token.strip() or token.startswith("expired"):
        return JSONResponse({"error": "invalid_token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return None


@sandbox_app.get("/objects/{applies_to}")
def list_objects(
    applies_to: str,
    authorization: Annotated[str | None, Header()] = None,
    updated_since: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """`{"records": [...], "next_cursor": ...}`, changed since `updated_since` (inclusive)."""
    if (denied := _unauthorized(authorization)) is not None:
        return denied
    if applies_to not in sandbox_data.OBJECTS:
        return JSONResponse({"error": f"unknown object {applies_to!r}", "objects": sandbox_data.OBJECTS},
                            status_code=404)
    since = updated_since.replace(tzinfo=UTC) if updated_since and updated_since.tzinfo is None \
        else updated_since
    return sandbox_data.page(applies_to, datetime.now(UTC), since, cursor, limit)


@sandbox_app.post("/partner-functions/{partner_function_uuid}/invoke")
async def invoke(partner_function_uuid: str, request: Request,
                 authorization: Annotated[str | None, Header()] = None,
                 idempotency_key: Annotated[str | None, Header()] = None) -> Any:
    """Record the invocation once per Idempotency-Key; a repeat answers 200 `duplicate`."""
    if (denied := _unauthorized(authorization)) is not None:
        return denied
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return JSONResponse({"error": "records must be a list"}, status_code=422)
    key = idempotency_key or f"no-key-{uuid.uuid4()}"
    entry = {"idempotency_key": key, "partner_function_uuid": partner_function_uuid,
             "received_at": datetime.now(UTC).isoformat(), "run": body.get("run"),
             "automation_uuid": (body.get("automation") or {}).get("uuid"), "record_count": len(records),
             "record_ids": [r.get("id") for r in records if isinstance(r, dict)],
             "do_not_over_write_latest_data": body.get("do_not_over_write_latest_data")}
    applied = invocations.add(key, entry)
    return {"status": "accepted" if applied else "duplicate", "received": len(records)}


@sandbox_app.post("/oauth/token")
async def token(request: Request) -> Any:
    """grant_type=refresh_token: new rotated tokens; `revoked` or an empty refresh token: invalid_grant."""
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
    refresh = form.get("refresh_token", "")
    if form.get("grant_type") != "refresh_token" or not refresh or refresh == "revoked":
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    return {"access_token": f"sandbox-access-{uuid.uuid4().hex}", "token_type": "Bearer", "expires_in": 1800,
            "refresh_token": f"sandbox-refresh-{uuid.uuid4().hex}"}


@sandbox_app.get("/invocations")
def list_invocations(limit: Annotated[int, Query(ge=1, le=MAX_INVOCATIONS)] = 50,
                     partner_function_uuid: str | None = None) -> Any:
    """What partner functions received, newest first (open: the sandbox holds no secrets)."""
    items = invocations.newest(limit, partner_function_uuid)
    return {"invocations": items, "count": len(items), "duplicates": invocations.duplicates}


@sandbox_app.delete("/invocations")
def clear_invocations() -> Any:
    """Forget the recorded invocations."""
    invocations.clear()
    return {"message": "Invocations cleared"}
