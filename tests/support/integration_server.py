"""A real HTTP integration API on loopback for the tests: records you control, invocations recorded.

Implements the contract of DESIGN.md (objects with cursor pagination, partner-function invoke with
Idempotency-Key, /oauth/token refresh), with knobs to fail the next calls in the ways that matter.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit


@dataclass
class Failure:
    """One planned failure: an HTTP status (with Retry-After), a stall longer than the timeout, bad JSON,
    or an error that echoes the request (`echo`: its body, form and Authorization header, as careless
    providers do) with `error` as the OAuth error code."""

    kind: str  # "status" | "timeout" | "malformed" | "echo"
    status: int = 500
    retry_after: str | None = None
    stall_s: float = 2.0
    skip: int = 0  # let this many calls through first
    error: str | None = None  # "echo": the body's OAuth `error` code (default "invalid_client")
    text: bool = False  # "echo": a text/plain body instead of JSON


@dataclass
class Invocation:
    """One invoke request as received."""

    key: str | None
    body: dict[str, Any]
    authorization: str | None
    at: float


@dataclass
class PartnerLimits:
    """A partner that enforces limits per tenant, as Xero does: 429 with Retry-After past any of them."""

    per_minute: int | None = None
    concurrent: int | None = None
    per_day: int | None = None  # a spent day: 429 with Retry-After `day_retry_after_s`
    day_retry_after_s: int = 10800
    send_remaining: bool = True  # X-MinLimit-Remaining / X-DayLimit-Remaining on every answer


@dataclass
class ServerState:
    """Everything a test sets or reads; guarded by `lock`."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    applied: dict[str, Invocation] = field(default_factory=dict)  # first invocation per Idempotency-Key
    fetches: list[dict[str, list[str]]] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)  # "objects" | "invoke" | "token"
    access_tokens: set[str] | None = None  # None: any token accepted
    refresh_token: str | None = None
    refreshes: int = 0  # token requests received (refused ones included)
    refresh_successes: int = 0  # token requests that rotated the tokens
    refresh_tokens_used: list[str] = field(default_factory=list)  # the refresh_token of every token request
    token_delay_s: float = 0.0  # every token request takes this long (a slow account server)
    tokens_in_flight: int = 0
    max_tokens_in_flight: int = 0
    invoke_delay_s: float = 0.0
    invokes_started: int = 0  # counted before the delay: a test can act while a call is in flight
    limits: PartnerLimits | None = None
    calls: list[float] = field(default_factory=list)  # monotonic times of calls that got through
    calls_total: int = 0  # every call, answered 429 or not
    throttled_total: int = 0  # calls answered 429
    in_flight: int = 0
    max_in_flight: int = 0
    fetch_delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class IntegrationServer:
    """The server and its knobs; `url` is its base (the connection's api_domain and account_server)."""

    def __init__(self) -> None:
        self.state = ServerState()
        handler = type("BoundHandler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="integration-api", daemon=True)

    def start(self) -> IntegrationServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def set_records(self, applies_to: str, records: list[dict[str, Any]]) -> None:
        """What GET /objects/{applies_to} returns from now on."""
        with self.state.lock:
            self.state.records[applies_to] = [dict(r) for r in records]

    def fail_next(self, endpoint: str, count: int = 1, skip: int = 0, **failure: Any) -> None:
        """Make `count` calls of an endpoint ("objects", "invoke", "token") fail, after `skip` succeed."""
        with self.state.lock:
            self.state.failures.setdefault(endpoint, []).extend(
                Failure(**failure, skip=skip if i == 0 else 0) for i in range(count))

    def require_tokens(self, access: set[str] | None, refresh: str | None = None) -> None:
        """Accept only these access tokens (401 otherwise) and this refresh token at /oauth/token.

        Refresh tokens rotate as real providers' do: a successful refresh replaces both tokens, and a
        refresh token used before (or never issued) is refused with 400 invalid_grant.
        """
        with self.state.lock:
            self.state.access_tokens, self.state.refresh_token = access, refresh

    def set_token_delay(self, seconds: float) -> None:
        """Every later token request answers after `seconds` (checked and rotated after the wait)."""
        with self.state.lock:
            self.state.token_delay_s = seconds

    def sent_records(self) -> list[dict[str, Any]]:
        """Every record applied by the partner (one invocation per Idempotency-Key), in order."""
        with self.state.lock:
            return [rec for inv in self.state.applied.values() for rec in inv.body.get("records", [])]

    def invocations(self) -> list[Invocation]:
        """Every invoke request received, retries included."""
        with self.state.lock:
            return list(self.state.invocations)


@contextmanager
def integration_server() -> Iterator[IntegrationServer]:
    """A started server, stopped afterwards."""
    server = IntegrationServer().start()
    try:
        yield server
    finally:
        server.stop()


class _Handler(BaseHTTPRequestHandler):
    """Routes: GET /objects/<name>, POST /partner-functions/<uuid>/invoke, POST /oauth/token."""

    state: ServerState
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every keep-alive request stalls ~40 ms (delayed ACK)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on state, not on access logs."""

    def do_GET(self) -> None:
        self._within_limits(self._get)

    def do_POST(self) -> None:
        self._within_limits(self._post)

    def _within_limits(self, handle: Any) -> None:
        """Count the call against the partner's limits (429 past any of them), and in flight while served."""
        with self.state.lock:
            self.state.calls_total += 1
            refusal = self._refusal()
            if refusal is None:
                self.state.in_flight += 1
                self.state.max_in_flight = max(self.state.max_in_flight, self.state.in_flight)
                self.state.calls.append(time.monotonic())
            else:
                self.state.throttled_total += 1
        if refusal is not None:
            if self.command == "POST":  # read the refused request's body, or the next request on this
                self._drain()  # kept-alive connection would be parsed from it
            return self._reply(429, {"error": "rate limited"}, refusal)
        try:
            handle()
        finally:
            with self.state.lock:
                self.state.in_flight -= 1

    def _refusal(self) -> dict[str, str] | None:
        """The 429's headers if this call is past a limit, else None (under the state's lock)."""
        limits = self.state.limits
        if limits is None:
            return None
        now = time.monotonic()
        minute = sum(1 for t in self.state.calls if t > now - 60)
        if limits.per_day is not None and len(self.state.calls) >= limits.per_day:
            return {"Retry-After": str(limits.day_retry_after_s), "X-Rate-Limit-Problem": "day"}
        if limits.concurrent is not None and self.state.in_flight >= limits.concurrent:
            return {"Retry-After": "1", "X-Rate-Limit-Problem": "concurrent"}
        if limits.per_minute is not None and minute >= limits.per_minute:
            oldest = min(t for t in self.state.calls if t > now - 60)
            return {"Retry-After": str(max(1, int(oldest + 60 - now + 1))), "X-Rate-Limit-Problem": "minute"}
        return None

    def _remaining_headers(self) -> dict[str, str]:
        """Xero's remaining-count headers, when the partner sends them."""
        limits = self.state.limits
        if limits is None or not limits.send_remaining:
            return {}
        with self.state.lock:
            now = time.monotonic()
            minute = sum(1 for t in self.state.calls if t > now - 60)
            day = len(self.state.calls)
        out = {}
        if limits.per_minute is not None:
            out["X-MinLimit-Remaining"] = str(max(0, limits.per_minute - minute))
        if limits.per_day is not None:
            out["X-DayLimit-Remaining"] = str(max(0, limits.per_day - day))
        return out

    def _get(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith("/objects/"):
            return self._reply(404, {"error": "not found"})
        if self._planned_failure("objects", b"") or not self._authorized():
            return None
        query = parse_qs(parts.query)
        with self.state.lock:
            self.state.fetches.append(query)
            records = list(self.state.records.get(parts.path.split("/")[2], []))
            delay = self.state.fetch_delay_s
        if delay:
            time.sleep(delay)
        return self._reply(200, _page(records, query), self._remaining_headers())

    def _post(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/oauth/token":
            return self._token(body)
        if not (path.startswith("/partner-functions/") and path.endswith("/invoke")):
            return self._reply(404, {"error": "not found"})
        if self._planned_failure("invoke", body) or not self._authorized():
            return None
        if not body:
            return self._reply(400, {"error": "an invoke needs a JSON body"})
        return self._invoke(json.loads(body))

    def _invoke(self, payload: dict[str, Any]) -> None:
        """Record the invocation; the first per Idempotency-Key is the one applied."""
        with self.state.lock:
            self.state.invokes_started += 1
            delay = self.state.invoke_delay_s
        if delay:
            time.sleep(delay)
        inv = Invocation(self.headers.get("Idempotency-Key"), payload, self.headers.get("Authorization"),
                         time.time())
        with self.state.lock:
            self.state.invocations.append(inv)
            duplicate = inv.key in self.state.applied
            if not duplicate:
                self.state.applied[inv.key or f"none-{len(self.state.invocations)}"] = inv
        self._reply(200, {"status": "duplicate" if duplicate else "accepted"}, self._remaining_headers())

    def _token(self, raw: bytes) -> None:
        """grant_type=refresh_token: rotate both tokens, or 400 invalid_grant (after `token_delay_s`)."""
        if self._planned_failure("token", raw):
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        with self.state.lock:
            delay = self.state.token_delay_s
            self.state.tokens_in_flight += 1
            in_flight = self.state.tokens_in_flight
            self.state.max_tokens_in_flight = max(self.state.max_tokens_in_flight, in_flight)
        if delay:
            time.sleep(delay)
        with self.state.lock:
            self.state.tokens_in_flight -= 1
            self.state.refreshes += 1
            self.state.refresh_tokens_used.append(form.get("refresh_token", ""))
            n = self.state.refreshes
            valid = form.get("refresh_token") == self.state.refresh_token
            if form.get("grant_type") != "refresh_token" or not valid:
                return self._reply(400, {"error": "invalid_grant"})
            access, refresh = f"access-{n}", f"refresh-{n}"
            self.state.access_tokens = {access}
            self.state.refresh_token = refresh
            self.state.refresh_successes += 1
        self._reply(200, {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                          "expires_in": 1800})

    def _authorized(self) -> bool:
        """Bearer check against the accepted tokens; a 401 is sent when it fails."""
        with self.state.lock:
            allowed = self.state.access_tokens
        header = self.headers.get("Authorization") or ""
        if allowed is None or (header.startswith("Bearer ") and header[7:] in allowed):
            return True
        self._reply(401, {"error": "invalid_token"})
        return False

    def _planned_failure(self, endpoint: str, raw: bytes) -> bool:
        """Serve the next planned failure of this endpoint, if any."""
        with self.state.lock:
            queue = self.state.failures.get(endpoint) or []
            failure = queue[0] if queue else None
            if failure is not None and failure.skip > 0:
                failure.skip -= 1
                failure = None
            elif failure is not None:
                queue.pop(0)
        if failure is None:
            return False
        if failure.kind == "timeout":
            time.sleep(failure.stall_s)
            self._reply(504, {"error": "too late"})
        elif failure.kind == "malformed":
            self._raw(200, b"{not json", "application/json")
        elif failure.kind == "echo":
            self._echo(failure, raw)
        else:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            self._reply(failure.status, {"error": f"planned {failure.status}"}, headers)
        return True

    def _echo(self, failure: Failure, raw: bytes) -> None:
        """An error that repeats the request back: raw body (also URL-encoded), form, Authorization header."""
        text = raw.decode(errors="replace")
        authorization = self.headers.get("Authorization") or ""
        if failure.text:
            data = f"error={failure.error or 'invalid_client'} request: {text} auth: {authorization}"
            return self._raw(failure.status, data.encode(), "text/plain")
        form = {k: v[0] for k, v in parse_qs(text).items()}
        return self._reply(failure.status, {"error": failure.error or "invalid_client",
                                            "request": quote(text, safe=""),
                                            "error_description": f"could not authenticate: {text}",
                                            "received": form, "authorization": authorization})

    def _drain(self) -> None:
        """Read and drop the request's body (a refused request's)."""
        with contextlib.suppress(ConnectionAbortedError):  # cut short: the connection is gone anyway
            self._body()

    def _body(self) -> bytes:
        """The request body; a body cut short (its client killed between headers and body) raises, so
        the request is dropped instead of being recorded as an empty batch under its Idempotency-Key."""
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise ConnectionAbortedError(f"body cut short: {len(data)} of {length} bytes")
        return data

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json", headers)

    def _raw(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


def _page(records: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """Filter by updated_since (inclusive), then one page from the cursor (an offset)."""
    since = query.get("updated_since", [None])[0]
    if since:
        from datetime import datetime

        floor = datetime.fromisoformat(since)
        records = [r for r in records if datetime.fromisoformat(r["updated_at"]) >= floor]
    records.sort(key=lambda r: (r["updated_at"], str(r["id"])))
    offset = int(query.get("cursor", ["0"])[0])
    limit = int(query.get("limit", ["100"])[0])
    page = records[offset:offset + limit]
    nxt = str(offset + limit) if offset + limit < len(records) else None
    return {"records": page, "next_cursor": nxt}
