"""The client of a connection's integration API for the length of one run: bearer auth, every call within
the connection's budget, the partner's 429s followed, and one retry after a token refresh on a 401.
The HTTP transport (sessions, paths, error mapping) is tasks/transport.py, shared with the token refresh.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from models.connection import Connection
from models.settings import get_settings
from tasks import tokens
from tasks.budget import Budget, Usage
from tasks.retry import parse_retry_after
from tasks.transport import Endpoint, json_body, raise_for_status, send, session_for

log = logging.getLogger(__name__)

MAX_THROTTLED = 20  # 429s one call waits out through the budget before they count as a failure
DEFAULT_THROTTLE_PAUSE_S = 5.0  # a 429 without Retry-After pauses the connection this long


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
            try:
                resp = send(self.session, method, url, headers=self._headers(headers), **kwargs)
            except Exception:
                self.budget.usage.errors += 1
                raise
        self.budget.follow(resp.headers)
        _count_outcome(self.budget.usage, resp)
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


def _count_outcome(usage: Usage, resp: requests.Response) -> None:
    """ok below 400; a 429 (or a 503 with Retry-After) is counted as throttled by `_throttled`; else error."""
    code = resp.status_code
    if code < 400:
        usage.ok += 1
    elif not (code == 429 or (code == 503 and resp.headers.get("Retry-After"))):
        usage.errors += 1
