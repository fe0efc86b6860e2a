"""Query parameter types: filters over closed sets, free-text filters, `sort` over a whitelist.

As with the body fields (models/schemas/fields.py), each is checked with exactly the pattern the
OpenAPI document
publishes for it: a closed set is its values in any case (blank: no filter), a sort is a comma-separated
list of whitelisted fields, each with an optional `-` (descending) or `+`.
"""

# No `from __future__ import annotations`: page_of's inner function is read by FastAPI, whose string
# annotations would have to resolve in this module's globals.
import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BeforeValidator, WithJsonSchema

from models.run import STATUSES, TRIGGERS
from models.schemas.fields import NO_NUL, any_case, choice, choice_schema
from models.store import connections, operations, partner_functions
from models.store.listing import DEFAULT_LIMIT, MAX_FILTER_LENGTH, MAX_LIMIT, PageRequest
from tasks import manual_runs as runs

#: What a query-string boolean may be: the words parse_flag knows, in any case, or blank (no filter).
FLAG_WORDS = {"true": True, "1": True, "yes": True, "on": True, "t": True, "y": True,
              "false": False, "0": False, "no": False, "off": False, "f": False, "n": False}
MAX_SORT_LENGTH = 200


def _closed(choices: tuple[str, ...], upper: bool, what: str) -> Any:
    """An optional filter over a closed set, read in any case; None when absent or blank."""
    return Annotated[str | None, choice(choices, upper),
                     WithJsonSchema(choice_schema(choices, what, nullable=False))]


def _query_flag(value: Any) -> bool | None:
    """A query-string boolean; None when absent or blank."""
    if value is None:
        return None
    if isinstance(value, str) and _FLAG_RE.search(value):
        text = value.strip().lower()
        return FLAG_WORDS[text] if text else None
    raise ValueError("must be true or false")


_FLAG_TEXT = rf"^\s*(?:{'|'.join(any_case(w) for w in FLAG_WORDS)})?\s*$"
_FLAG_RE = re.compile(_FLAG_TEXT)

ConnectionStatus = _closed(("ACTIVE", "INACTIVE"), True, "ACTIVE or INACTIVE")
AutomationStatus = _closed(("ACTIVE", "PAUSED"), True, "ACTIVE or PAUSED")
DirectionFilter = _closed(("IMPORT", "EXPORT"), True, "IMPORT or EXPORT")
RunStatus = _closed(STATUSES, False, "a run status")
RunTrigger = _closed(TRIGGERS, False, "what started the run")
QueryFlag = Annotated[bool | None, BeforeValidator(_query_flag), WithJsonSchema({
    "type": "string", "pattern": _FLAG_TEXT,
    "description": "true or false (also 1/0, yes/no, on/off, t/f, y/n), any case; blank: no filter"})]
#: A free-text filter: compared as given, bounded, storable (models.store.listing.check_filter).
_STATE = "(ok|late|failing|never_run|paused|disabled)"
HealthFilter = Annotated[str | None, WithJsonSchema(
    {"type": "string", "maxLength": 80, "pattern": f"^ *({_STATE}( *, *{_STATE})*)? *$",
     "description": "health states, comma-separated: ok, late, failing, never_run, paused, disabled"})]
TextFilter = Annotated[str | None, WithJsonSchema(
    {"type": "string", "maxLength": MAX_FILTER_LENGTH, "pattern": NO_NUL})]


def _sort_item(fields: Iterable[str]) -> str:
    """One sort key: a whitelisted field with an optional `-` (descending) or `+`."""
    return rf"[-+]?(?:{'|'.join(re.escape(f) for f in sorted(fields))})"


def sort_pattern(fields: Iterable[str]) -> str:
    """`created_at`, `-updated_at,name`, ... over `fields`; blank keeps the default order."""
    one = _sort_item(fields)
    return rf"^\s*(?:{one}\s*(?:,\s*{one}\s*)*)?$"


def sort_type(fields: Iterable[str]) -> Any:
    """The `sort` parameter of one collection, refused with the whitelist when it names another field."""
    allowed = sorted(fields)
    pattern_text = sort_pattern(allowed)
    pattern, item = re.compile(pattern_text), re.compile(_sort_item(allowed))

    def check(value: Any) -> str | None:
        """The sort as given, or a 422 naming the first part that is not a whitelisted field."""
        if value is None:
            return None
        text = str(value)
        if len(text) > MAX_SORT_LENGTH:
            raise ValueError(f"must be at most {MAX_SORT_LENGTH} characters")
        if pattern.search(text):
            return text
        bad = next((p.strip() for p in text.split(",") if not item.fullmatch(p.strip())), text)
        raise ValueError(f"cannot sort by '{bad}'; use one of {', '.join(allowed)} (prefix - for descending)")

    schema = {"type": "string", "maxLength": MAX_SORT_LENGTH, "pattern": pattern_text,
              "description": f"comma-separated: {', '.join(allowed)}; prefix - for descending"}
    return Annotated[str | None, BeforeValidator(check), WithJsonSchema(schema)]


def page_of(sortable: Iterable[str]) -> Any:
    """The page dependency of one collection: limit (1..500, default 50), offset, and `sort` over its
    whitelist."""
    Sort = sort_type(sortable)  # noqa: N806 (a type)

    def page_request(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")] = DEFAULT_LIMIT,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")] = 0,
        sort: Annotated[Sort, Query()] = None,  # type: ignore[valid-type]  # built per collection
    ) -> PageRequest:
        """limit, offset and sort from the query string."""
        return PageRequest(limit=limit, offset=offset, sort=sort)

    return Annotated[PageRequest, Depends(page_request)]


def _uuid_path(what: str) -> Any:
    """A path parameter naming a row by its UUID (anything else is a 404)."""
    return Annotated[str, Path(description=f"the {what}'s UUID", json_schema_extra={"format": "uuid"})]


ConnectionUuid = _uuid_path("connection")
PartnerFunctionUuid = _uuid_path("partner function")
AutomationUuid = _uuid_path("automation")
RunUuid = _uuid_path("run")


ConnectionPage = page_of(connections.SORTABLE)
PartnerFunctionPage = page_of(partner_functions.SORTABLE)
AutomationPage = page_of(operations.SORTABLE)
RunPage = page_of(runs.SORTABLE)
