"""The records the next run would look at, fetched for explain: since the watermark, applies_to_function
honoured, within the connection's budget, at most `limit` of them, nothing written.

One try per page: explain answers a person waiting on an HTTP request, so a failing partner is reported
at once (502) instead of after the run's backoff.
"""

from __future__ import annotations

from models.settings import get_settings
from tasks.context import RunContext
from tasks.fetch import fetch_records
from tasks.integration_client import IntegrationClient
from tasks.retry import RetryPolicy
from tasks.selection import Record, candidates, newest_versions, record_id, updated_at

ONE_TRY = RetryPolicy(attempts=1, base_s=0.0, cap_s=0.0)


def next_run_records(ctx: RunContext, limit: int) -> list[Record]:
    """The first `limit` records the next run would evaluate, oldest change first (the run's order);
    pages are fetched only until that many are found. Integration failures propagate
    (IntegrationError, BudgetExceeded)."""
    client = IntegrationClient.for_connection(ctx.connection)
    updated_since = ctx.since.at if ctx.since_last_look_up else None
    enough = _Enough(ctx, limit)
    fetched = fetch_records(client, ctx.applies_to, updated_since, get_settings().fetch_page_size,
                            until=enough, policy=ONE_TRY)
    looked_at = candidates(newest_versions(fetched), ctx.since, ctx.since_last_look_up,
                           ctx.applies_to_function)
    looked_at.sort(key=lambda r: (updated_at(r), record_id(r)))
    return looked_at[:limit]


class _Enough:
    """Whether the pages so far hold `limit` distinct candidates (each page is looked at once)."""

    def __init__(self, ctx: RunContext, limit: int) -> None:
        self._ctx, self._limit = ctx, limit
        self._ids: set[str] = set()
        self._done = 0

    def __call__(self, fetched: list[Record]) -> bool:
        ctx, new = self._ctx, fetched[self._done:]
        self._done = len(fetched)
        kept = candidates(new, ctx.since, ctx.since_last_look_up, ctx.applies_to_function)
        self._ids.update(record_id(r) for r in kept)
        return len(self._ids) >= self._limit
