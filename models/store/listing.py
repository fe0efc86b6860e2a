"""Collections: filter by query parameters, sort by a whitelisted field, page with limit/offset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from models.errors import DefinitionError
from models.schemas.fields import storable_text

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_FILTER_LENGTH = 255


@dataclass(frozen=True)
class PageRequest:
    """What a client asked for: the page and the order (`created_at`, `-updated_at`, comma-separated)."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: str | None = None


@dataclass(frozen=True)
class Page(Generic[T_co]):
    """One page of rows and the total number matching the filters (read-only, so covariant:
    a Page[Run] is a Page[object])."""

    items: Sequence[T_co]
    total: int
    limit: int
    offset: int


def check_filter(value: str | None, field: str) -> str | None:
    """A filter value as given, or 422 if no database could compare it."""
    if value is None:
        return None
    if len(value) > MAX_FILTER_LENGTH:
        raise DefinitionError(field, f"must be at most {MAX_FILTER_LENGTH} characters")
    try:
        return storable_text(value)
    except ValueError as exc:
        raise DefinitionError(field, str(exc)) from exc


def order_by(spec: str | None, sortable: Mapping[str, InstrumentedAttribute[Any]],
             default: Sequence[Any]) -> list[Any]:
    """The ORDER BY for `sort`; 422 naming `sort` for a field not in the whitelist."""
    if spec is None or not spec.strip():
        return list(default)
    clauses: list[Any] = []
    for part in spec.split(","):
        name = part.strip()
        descending = name.startswith("-")
        column = sortable.get(name.lstrip("-+"))
        if column is None:
            allowed = ", ".join(sorted(sortable))
            raise DefinitionError("sort", f"cannot sort by '{name}'; use one of {allowed} "
                                          "(prefix - for descending)")
        clauses.append(column.desc() if descending else column.asc())
    return [*clauses, *default]


def paginate(session: Session, stmt: Select[T], page: PageRequest,
             sortable: Mapping[str, InstrumentedAttribute[Any]], default: Sequence[Any],
             options: Sequence[Any] = ()) -> Page[T]:
    """Run the filtered statement for one page, with the total count of the whole collection."""
    ordering = order_by(page.sort, sortable, default)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    query = stmt.options(*options).order_by(*ordering).limit(page.limit).offset(page.offset)
    rows = session.scalars(query).all()
    return Page(items=list(rows), total=total, limit=page.limit, offset=page.offset)
