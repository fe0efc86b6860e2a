"""Lenient field types for request bodies: what the SDKs send ("true", "1") read as meant.

Every string is bounded by its column's size and refused when a database could not store it
(NUL, lone surrogates), so bad input is a 422 and never a server error.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from models.errors import DefinitionError

MAX_INT = 2**31 - 1
MAX_JSON_DEPTH = 32
DIRECTIONS = ("IMPORT", "EXPORT")
APPLIES_TO_FUNCTIONS = ("new", "update", "all")


def storable_text(value: str) -> str:
    """Refuse text no database column can hold: NUL characters and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _blank_to_none(value: Any) -> Any:
    """An empty string means "not given", as form-minded clients send it."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _lenient_flag(value: Any) -> Any:
    """Booleans as "true"/"false" (any case), real booleans, or blank for "not given"."""
    value = _blank_to_none(value)
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    """Codes such as IMPORT/EXPORT are matched case-insensitively and stored upper case."""
    value = _blank_to_none(value)
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    """Keywords such as new/update/all are matched case-insensitively and stored lower case."""
    value = _blank_to_none(value)
    return value.strip().lower() if isinstance(value, str) else value


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    """A validator naming the allowed values in its message."""

    def check(value: str) -> str:
        """Refuse anything but the listed values."""
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return AfterValidator(check)


def _text(max_length: int) -> Any:
    """A bounded, storable string type."""
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(storable_text)]


Str16 = _text(16)
Str32 = _text(32)
Str64 = _text(64)
Str128 = _text(128)
Str255 = _text(255)
Str512 = _text(512)
Str1024 = _text(1024)
LongText = _text(65_535)
Required255 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(storable_text)
]
Flag = Annotated[bool | None, BeforeValidator(_lenient_flag)]
Count = Annotated[Annotated[int, Field(ge=0, le=MAX_INT)] | None, BeforeValidator(_blank_to_none)]
Direction = Annotated[Annotated[str, _one_of(DIRECTIONS)] | None, BeforeValidator(_upper)]
AppliesToFunction = Annotated[
    Annotated[str, _one_of(APPLIES_TO_FUNCTIONS)] | None, BeforeValidator(_lower)
]


def check_json(value: Any, field: str, depth: int = 0) -> None:
    """Refuse free-form JSON (criteria, configuration) a database or a response could not carry."""
    if depth > MAX_JSON_DEPTH:
        raise DefinitionError(field or "body", f"is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value, field or "body")
    elif isinstance(value, float) and not math.isfinite(value):
        raise DefinitionError(field or "body", "must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(str(key), field or "body")
            check_json(item, _join(field, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, _join(field, index), depth + 1)


def _join(field: str, part: object) -> str:
    """A dotted path one level down ("" is the body itself)."""
    return f"{field}.{part}" if field else str(part)


def _check_text(value: str, field: str) -> None:
    """The DefinitionError form of storable_text, for free-form JSON."""
    try:
        storable_text(value)
    except ValueError as exc:
        raise DefinitionError(field, str(exc)) from exc


def parse_flag(value: str | None, field: str) -> bool | None:
    """A query-string boolean ("true"/"false", "1"/"0", "yes"/"no"); None when absent."""
    if value is None or not value.strip():
        return None
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on", "t", "y"):
        return True
    if text in ("false", "0", "no", "off", "f", "n"):
        return False
    raise DefinitionError(field, "must be true or false")
