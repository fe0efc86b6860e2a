"""Fetching candidate records page by page: `GET objects/{applies_to}?updated_since=&cursor=&limit=`.

Each page is retried on its own; a page that still fails fails the run, and since the watermark only
moves on success, the next run fetches the same records again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from models.errors import PermanentIntegrationError, TransientIntegrationError
from tasks.integration_client import IntegrationClient
from tasks.retry import RetryPolicy, call_with_retries
from tasks.selection import Record

log = logging.getLogger(__name__)
MAX_PAGES = 100_000


def fetch_records(client: IntegrationClient, applies_to: str, updated_since: datetime | None, page_size: int,
                  on_retry: Callable[[TransientIntegrationError], None] | None = None,
                  on_next_page: Callable[[], None] | None = None,
                  until: Callable[[list[Record]], bool] | None = None,
                  policy: RetryPolicy | None = None) -> list[Record]:
    """Every record the API returns for the object (changed since `updated_since` when given).

    `on_next_page` is told before each page after the first (the run then shows as running). `until`
    (explain) stops after the page for which it returns true; `policy` replaces the settings' retries.
    """
    records: list[Record] = []
    cursor: str | None = None
    for page in range(MAX_PAGES):
        params = _params(updated_since, cursor, page_size)
        what = f"fetch {applies_to} page {page}"
        body = call_with_retries(
            partial(client.get_json, "objects_path", what, params, applies_to=applies_to),
            what, policy, on_retry)
        page_records, next_cursor = _page(body, what)
        records.extend(page_records)
        if not next_cursor or (until is not None and until(records)):
            return records
        if next_cursor == cursor:
            raise PermanentIntegrationError(f"{what}: next_cursor repeats {next_cursor!r}")
        cursor = next_cursor
        if on_next_page is not None:
            on_next_page()
    raise PermanentIntegrationError(f"fetch {applies_to}: more than {MAX_PAGES} pages")


def _params(updated_since: datetime | None, cursor: str | None, page_size: int) -> dict[str, Any]:
    """The query string of one page."""
    params: dict[str, Any] = {"limit": page_size}
    if updated_since is not None:
        params["updated_since"] = updated_since.isoformat()
    if cursor:
        params["cursor"] = cursor
    return params


def _page(body: Any, what: str) -> tuple[list[Record], str | None]:
    """(records, next cursor) of one page; a body not of the contract's shape is permanent."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise PermanentIntegrationError(f"{what}: the body is not {{records: [...], next_cursor: ...}}")
    records = body["records"]
    if not all(isinstance(r, dict) for r in records):
        raise PermanentIntegrationError(f"{what}: a record is not a JSON object")
    cursor = body.get("next_cursor")
    return records, (str(cursor) if cursor not in (None, "") else None)
