"""The pagination object with absolute previous/next page URLs (null at either end)."""

from __future__ import annotations

from starlette.datastructures import URL

from models.schemas.common import Pagination
from models.store.listing import Page


def page_url(url: URL, limit: int, offset: int) -> str:
    """The same request with another offset (and the same limit, filters and sort)."""
    return str(url.include_query_params(limit=limit, offset=offset))


def pagination(url: URL, page: Page[object]) -> Pagination:
    """records = total matching; previous_page/next_page are null when there is no such page."""
    previous = page_url(url, page.limit, max(page.offset - page.limit, 0)) if page.offset > 0 else None
    following = page.offset + page.limit
    after = page_url(url, page.limit, following) if following < page.total else None
    return Pagination(records=page.total, limit=page.limit, offset=page.offset, previous_page=previous,
                      next_page=after)
