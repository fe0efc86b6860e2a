"""The client of a connection's integration API: one requests.Session per connection, bearer auth,
the default paths of the contract (overridable per connection through `supporting_fields`), HTTP
failures mapped to transient / permanent errors, and one retry after a token refresh on a 401.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.adapters

from models.connection import Connection
from models.errors import PermanentIntegrationError, TransientIntegrationError
from models.limits import limits_for
from models.logging_setup import redact
from models.settings import get_settings
from tasks.budget import Budget, Scope, Usage
from tasks.retry import parse_retry_after

log = logging.getLogger(__name__)

#: The contract's paths; a connection overrides any of them with the same key in `supporting_fields`.
DEFAULT_PATHS: dict[str, str] = {
    "objects_path": "/objects/{applies_to}",
    "invoke_path": "/partner-functions/{partner_function_uuid}/invoke",
    "token_path": "/oauth/token",
}
SANDBOX_PROVIDER = "SANDBOX"
MAX_THROTTLED = 20  # 429s one call waits out through the budget before they count as a failure
DEFAULT_THROTTLE_PAUSE_S = 5.0  # a 429 without Retry-After pauses the connection this long
_MAX_SESSIONS = 256
_sessions: OrderedDict[str, requests.Session] = OrderedDict()
_sessions_lock = threading.Lock()


class EnvironmentOnceSession(requests.Session):
    """A Session that reads the environment (proxies, NO_PROXY, REQUESTS_CA_BUNDLE) once per host.

    requests re-reads it on every request: it walks all of os.environ twice, about a third of a
    millisecond of CPU per call, which was a tenth of a run's CPU. Same settings, read once per host;
    a request that passes its own proxies / verify / cert / stream takes the ordinary path.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        """requests' own merge, remembered per (scheme, host) while nothing per-request is given."""
        if proxies or stream is not None or verify is not None or cert is not None or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        merged = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}


def session_for(connection_uuid: str) -> requests.Session:
    """The connection's keep-alive session, shared by the runs of this process (bounded LRU)."""
    with _sessions_lock:
        session = _sessions.pop(connection_uuid, None) or _new_session()
        _sessions[connection_uuid] = session
        while len(_sessions) > _MAX_SESSIONS:
            _sessions.popitem(last=False)[1].close()
        return session


def _new_session() -> requests.Session:
    """A keep-alive session whose pool holds as many connections per host as the worker runs at once
    (requests keeps 10: a thread-pool worker on one connection opened a new one, a TLS handshake on a
    real partner, for a quarter of its calls)."""
    session = EnvironmentOnceSession()
    size = max(10, min(get_settings().worker_concurrency, 256))
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def connection_paths(supporting_fields: str | None) -> dict[str, str]:
    """The default paths with the connection's overrides (a JSON object string; unreadable → defaults)."""
    paths = dict(DEFAULT_PATHS)
    try:
        extra = json.loads(supporting_fields) if supporting_fields else {}
    except ValueError:
        extra = {}
    if isinstance(extra, dict):
        paths.update({k: str(v) for k, v in extra.items() if k in DEFAULT_PATHS and v})
    return paths


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one connection's integration API (no secrets in here)."""

    connection_uuid: str
    api_base: str
    account_base: str
    token_type: str
    paths: dict[str, str] = field(default_factory=dict)
    scope: Scope | None = None  # whose budget its calls take (None: no budget, for tools and tests)

    @classmethod
    def of(cls, conn: Connection) -> Endpoint:
        """Read from the connection; a SANDBOX connection without api_domain uses SANDBOX_URL."""
        api = (conn.api_domain or "").strip()
        if not api and conn.provider == SANDBOX_PROVIDER:
            api = get_settings().sandbox_url
        if not api:
            raise PermanentIntegrationError("the connection has no api_domain")
        account = (conn.account_server or "").strip() or api
        scope = Scope(conn.uuid, conn.provider, limits_for(conn.provider, conn.rate_limits), conn.client_id,
                      conn.remote_instance_id)
        return cls(conn.uuid, api.rstrip("/"), account.rstrip("/"), conn.token_type or "Bearer",
                   connection_paths(conn.supporting_fields), scope)

    def url(self, path_key: str, **params: str) -> str:
        """The absolute URL of one of the contract's paths, parameters URL-quoted."""
        path = self.paths[path_key].format(**{k: quote(v, safe="") for k, v in params.items()})
        base = self.account_base if path_key == "token_path" else self.api_base
        return base + (path if path.startswith("/") else "/" + path)


def timeouts() -> tuple[float, float]:
    """(connect, read) timeouts of every integration call."""
    s = get_settings()
    return s.http_connect_timeout_s, s.http_read_timeout_s


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    """One HTTP request; network failures become TransientIntegrationError naming the exception's type and
    the URL, redacted (never the exception's text, headers or body)."""
    try:
        return session.request(method, url, timeout=timeouts(), **kwargs)
    except requests.Timeout as exc:
        raise TransientIntegrationError(f"{method} {redact(url)}: timed out ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise TransientIntegrationError(f"{method} {redact(url)}: {type(exc).__name__}") from exc


def raise_for_status(resp: requests.Response, what: str, detail: str | None = None) -> None:
    """5xx and 429 are transient (Retry-After kept), any other 4xx permanent.

    The error text is `{what}: HTTP {code}` and then `detail` when given (the token endpoint gives only
    its OAuth error code), else the start of the body, redacted.
    """
    code = resp.status_code
    if code < 400:
        return
    detail = _short_body(resp) if detail is None else detail
    if code == 429 or code >= 500:
        raise TransientIntegrationError(
            f"{what}: HTTP {code}{detail}", retry_after_s=parse_retry_after(resp.headers.get("Retry-After"))
        )
    raise PermanentIntegrationError(f"{what}: HTTP {code}{detail}")


def json_body(resp: requests.Response, what: str) -> Any:
    """The response's JSON; an unreadable body is permanent (a retry returns the same)."""
    if not resp.content:
        return None
    try:
        return resp.json(parse_int=_json_int)
    except ValueError as exc:
        raise PermanentIntegrationError(f"{what}: the response is not JSON") from exc


def _json_int(digits: str) -> int | str:
    """A JSON integer; one longer than Python's int() accepts (4,300 digits) stays its digits as text,
    so one such value in one record cannot make every run of an automation fail (the criteria compare
    digit strings as numbers)."""
    try:
        return int(digits)
    except ValueError:
        return digits


def _short_body(resp: requests.Response) -> str:
    """The first characters of an error body, for the run's error text: redacted first (a partner may echo
    our request, credentials included), then shortened (so no cut leaves half a credential unmasked)."""
    text = redact(" ".join((resp.text or "").split()))
    return f": {text[:200]}" if text else ""


class IntegrationClient:
    """Authenticated calls to one connection's integration API, for the length of one run.

    Every call (each page, each invoke batch, each token refresh) first takes a permit from the
    connection's budget (tasks/budget.py). A 429, or a 503 with Retry-After, pauses the whole connection
    for every worker and the call is sent again through the budget: a wait the budget decides is not a
    failed attempt. A wait longer than BUDGET_MAX_WAIT_S raises BudgetExceeded (the run defers).
    """

    def __init__(
        self, endpoint: Endpoint, access_token: str | None, token_type: str, can_refresh: bool
    ) -> None:
        self.endpoint = endpoint
        self.session = session_for(endpoint.connection_uuid)
        self.budget = Budget(endpoint.scope) if endpoint.scope is not None else None
        self._access_token = access_token
        self._token_type = token_type
        self._can_refresh = can_refresh

    @classmethod
    def for_connection(cls, conn: Connection) -> IntegrationClient:
        """A client holding the connection's decrypted access token (in memory only)."""
        key = get_settings().secret_key
        endpoint = Endpoint.of(conn)
        return cls(endpoint, conn.secret("access_token", key), endpoint.token_type,
                   bool(conn.refresh_token_enc))

    @property
    def usage(self) -> Usage:
        """What this client's calls met: budget waits, 429s (recorded on the run)."""
        return self.budget.usage if self.budget is not None else Usage()

    def get_json(self, path_key: str, what: str, params: dict[str, Any], **path: str) -> Any:
        """GET one of the contract's paths and return its JSON body."""
        resp = self._call("GET", self.endpoint.url(path_key, **path), what, params=params)
        return json_body(resp, what)

    def post_json(self, path_key: str, what: str, body: Any, headers: dict[str, str], **path: str) -> Any:
        """POST a JSON body to one of the contract's paths and return its JSON body (if any)."""
        resp = self._call("POST", self.endpoint.url(path_key, **path), what, json=body, headers=headers)
        is_json = resp.headers.get("Content-Type", "").startswith("application/json")
        return json_body(resp, what) if is_json else None

    def _call(self, method: str, url: str, what: str, headers: dict[str, str] | None = None,
              **kwargs: Any) -> requests.Response:
        """Send within the budget with the bearer header; on a 401 refresh the tokens once (if possible)
        and resend; while the partner throttles, pause the connection and resend (bounded)."""
        for _ in range(MAX_THROTTLED + 1):
            resp = self._send(method, url, what, headers, kwargs)
            if resp.status_code == 401 and self._can_refresh:
                from tasks import tokens

                log.info("%s: 401 from connection %s, refreshing its token", what,
                         self.endpoint.connection_uuid)
                fresh = tokens.refresh(self.endpoint, used_token=self._access_token, budget=self.budget)
                self._access_token, self._token_type = fresh.access_token, fresh.token_type
                resp = self._send(method, url, what, headers, kwargs)
            if not self._throttled(resp):
                break
        raise_for_status(resp, what)
        return resp

    def _send(self, method: str, url: str, what: str, headers: dict[str, str] | None,
              kwargs: dict[str, Any]) -> requests.Response:
        """One request holding a permit of the connection's budget; the partner's counts are followed."""
        if self.budget is None:
            return send(self.session, method, url, headers=self._headers(headers), **kwargs)
        with self.budget.permit(what):
            resp = send(self.session, method, url, headers=self._headers(headers), **kwargs)
        self.budget.follow(resp.headers)
        return resp

    def _throttled(self, resp: requests.Response) -> bool:
        """A 429 (or a 503 with Retry-After): the connection is paused until then, for every worker."""
        code = resp.status_code
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if self.budget is None or not (code == 429 or (code == 503 and retry_after is not None)):
            return False
        self.budget.usage.throttled += 1
        wait = retry_after if retry_after is not None else DEFAULT_THROTTLE_PAUSE_S
        problem = resp.headers.get("X-Rate-Limit-Problem")
        scope = self.budget.scope
        limit = f" ({problem.strip()[:32]} limit)" if problem else ""
        self.budget.pause(wait, f"{scope.provider} answered {code}{limit}; Retry-After {wait:.0f} s")
        return True

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        """Authorization `{token_type} {access_token}` plus the call's own headers."""
        headers = dict(extra or {})
        if self._access_token:
            headers["Authorization"] = f"{self._token_type} {self._access_token}"
        return headers
