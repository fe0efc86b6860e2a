"""Lenient field types for request bodies: what the SDKs send ("true", "1") read as meant.

Each type publishes in the OpenAPI document exactly what it accepts: a lenient form is checked with
the very regular expression the document shows (Python's `re.search`, as JSON Schema tools read a
`pattern`), so a value the document allows is never refused for its form, and one it refuses is
never accepted. Every string is bounded by its column's size and refused when a database could not
store it (NUL, lone surrogates), so bad input is a 422 and never a server error.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from models.errors import DefinitionError

MAX_INT = 2**31 - 1
MAX_JSON_DEPTH = 32
DIRECTIONS = ("IMPORT", "EXPORT")
APPLIES_TO_FUNCTIONS = ("new", "update", "all")

#: Text without NUL characters (a JSON Schema `pattern`; lone surrogates cannot be written in UTF-8 JSON).
NO_NUL = r"^[^\u0000]*$"
#: Text with at least one character that is not white space, and no NUL.
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
#: A string "true" or "false" in any case, or blank (not given), white space around allowed.
FLAG_TEXT = r"^\s*(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])?\s*$"
#: A whole number 0..999,999,999 written in ASCII digits, or blank (not given).
COUNT_TEXT = r"^\s*[0-9]{0,9}\s*$"


def any_case(word: str) -> str:
    """A regular expression matching `word` in any letter case (`new` -> `[Nn][Ee][Ww]`)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in word)


def choice_text(choices: tuple[str, ...], blank: bool = True) -> str:
    """A pattern for one of `choices` in any case with white space around (and blank, if allowed)."""
    words = "|".join(any_case(c) for c in choices)
    return rf"^\s*(?:{words}){'?' if blank else ''}\s*$"


def storable_text(value: str) -> str:
    """Refuse text no database column can hold: NUL characters and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


def _not_blank(value: str) -> str:
    """Required text: refuse blank, store it without surrounding white space."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


def _flag(value: Any) -> bool | None:
    """A boolean, or "true"/"false" in any case; blank or null means "not given"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and _FLAG_RE.search(value):
        text = value.strip().lower()
        return (text == "true") if text else None
    raise ValueError('must be true or false (a boolean, or the string "true" or "false")')


def _count(value: Any) -> int | None:
    """A whole number 0..MAX_INT, or such a number (up to 9 digits) as a string; blank or null: not given."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_INT:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return value
    if isinstance(value, str) and _COUNT_RE.search(value):
        text = value.strip()
        return int(text) if text else None
    raise ValueError(f"must be a whole number from 0 to {MAX_INT}, or one of up to 9 digits as a string")


def choice(choices: tuple[str, ...], upper: bool) -> Any:
    """A validator of one of `choices` in any case (blank or null: not given), stored in their case."""
    pattern = re.compile(choice_text(choices))

    def check(value: Any) -> str | None:
        """Refuse anything but the listed values."""
        if value is None:
            return None
        if isinstance(value, str) and pattern.search(value):
            text = value.strip()
            return (text.upper() if upper else text.lower()) or None
        raise ValueError(f"must be one of {', '.join(choices)}")

    return BeforeValidator(check)


def choice_schema(choices: tuple[str, ...], what: str, nullable: bool = True) -> dict[str, Any]:
    """The document's form of a closed set read leniently: the values, or the same in any case."""
    branches: list[dict[str, Any]] = [
        {"type": "string", "enum": list(choices)},
        {"type": "string", "pattern": choice_text(choices),
         "description": "the same in any letter case, with white space around; blank means not given"},
    ]
    if nullable:
        branches.append({"type": "null"})
    return {"anyOf": branches, "description": what}


def _text(max_length: int) -> Any:
    """A bounded, storable string type."""
    schema = {"type": "string", "maxLength": max_length, "pattern": NO_NUL}
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(storable_text),
                     WithJsonSchema(schema)]


def required_text(max_length: int) -> Any:
    """A bounded, storable string that is not blank; stored without surrounding white space."""
    schema = {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK}
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(storable_text),
                     AfterValidator(_not_blank), WithJsonSchema(schema)]


def not_blank_text(max_length: int) -> Any:
    """A bounded, storable string the document shows as not blank, while the service says why a blank one
    is refused (check_on, perform_action: their own messages name what to write)."""
    schema = {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK}
    return Annotated[str, StringConstraints(max_length=max_length), AfterValidator(storable_text),
                     WithJsonSchema(schema)]


def _refuse_null(value: Any) -> Any:
    """An update may leave a required field out, not empty it."""
    if value is None:
        raise PydanticCustomError("empty", "cannot be empty")
    return value


def _no_default(schema: dict[str, Any]) -> None:
    """Leave `default: null` out of the document: null is exactly what the field refuses."""
    schema.pop("default", None)


def omissible(field_type: Any) -> Any:
    """A field an update may leave out (default None) but not send as null; see _refuse_null."""
    return Annotated[field_type, BeforeValidator(_refuse_null), Field(json_schema_extra=_no_default)]


_FLAG_RE = re.compile(FLAG_TEXT)
_COUNT_RE = re.compile(COUNT_TEXT)

Str16 = _text(16)
Str32 = _text(32)
Str64 = _text(64)
Str128 = _text(128)
Str255 = _text(255)
Str512 = _text(512)
Str1024 = _text(1024)
LongText = _text(65_535)
Required255 = required_text(255)
Provider = required_text(64)
CheckOn = not_blank_text(128)
PerformAction = not_blank_text(255)
# What an update may leave out but not empty (null is refused: "cannot be empty").
KeptStr128 = omissible(Str128)
KeptStr255 = omissible(Str255)
KeptRequired255 = omissible(Required255)
KeptCheckOn = omissible(CheckOn)
KeptPerformAction = omissible(PerformAction)
Flag = Annotated[bool | None, BeforeValidator(_flag), WithJsonSchema({
    "anyOf": [{"type": "boolean"}, {"type": "string", "pattern": FLAG_TEXT}, {"type": "null"}],
    "description": 'a boolean, or the string "true" or "false" in any case (as the seeds and SDKs send '
                   "it); blank or null means not given"})]
Count = Annotated[int | None, BeforeValidator(_count), WithJsonSchema({
    "anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_INT},
              {"type": "string", "pattern": COUNT_TEXT}, {"type": "null"}],
    "description": "a whole number, or a numeric string of up to 9 digits (\"1\", as the seeds send it); "
                   "blank or null means not given"})]
Direction = Annotated[str | None, choice(DIRECTIONS, upper=True),
                      WithJsonSchema(choice_schema(DIRECTIONS, "IMPORT or EXPORT"))]
AppliesToFunction = Annotated[str | None, choice(APPLIES_TO_FUNCTIONS, upper=False),
                              WithJsonSchema(choice_schema(APPLIES_TO_FUNCTIONS, "new, update or all"))]


def json_value_schema() -> dict[str, Any]:
    """Free-form JSON as `check_json` accepts it: any value, no NUL in a string or a key."""
    ref = {"$ref": "#/components/schemas/JsonValue"}
    return {"anyOf": [
        {"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
        {"type": "array", "items": ref},
        {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": ref},
    ], "description": f"any JSON value: no NUL character in a string or a key, at most {MAX_JSON_DEPTH} "
                      "levels deep"}


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
