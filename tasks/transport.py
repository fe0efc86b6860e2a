"""The HTTP transport of the integration API, shared by the client and the token refresh: one keep-alive
requests.Session per connection, the contract's paths, timeouts, and HTTP failures mapped to transient /
permanent errors (never a credential in an error's text).
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
from tasks.budget import Scope
from tasks.retry import parse_retry_after

log = logging.getLogger(__name__)

#: The contract's paths; a connection overrides any of them with the same key in `supporting_fields`.
DEFAULT_PATHS: dict[str, str] = {
    "objects_path": "/objects/{applies_to}",
    "invoke_path": "/partner-functions/{partner_function_uuid}/invoke",
    "token_path": "/oauth/token",
}
SANDBOX_PROVIDER = "SANDBOX"
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
