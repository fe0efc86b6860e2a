"""Turn every way a payload can be wrong into one DefinitionError naming each field by its full path."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from models.errors import DefinitionError, FieldError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def dotted(loc: Sequence[Any]) -> str:
    """A pydantic location as the dotted path the API reports (`integration.automation_details.code`)."""
    return ".".join(str(part) for part in loc)


def pydantic_errors(errors: Iterable[Mapping[str, Any]], strip: tuple[str, ...] = ()) -> list[FieldError]:
    """FieldErrors from pydantic's error list; `strip` drops location roots such as "body"."""
    out: list[FieldError] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] in strip:
            loc = loc[1:]
        message = str(error.get("msg", "is invalid"))
        out.append(FieldError(dotted(loc) or "body", message))
    return out


def parse_payload(model: type[M], data: Any) -> M:
    """Validate a decoded JSON payload (the CLI's `import FILE` uses this), raising DefinitionError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = pydantic_errors(exc.errors())
        raise DefinitionError(errors[0].field, errors[0].message, *errors[1:]) from None


class Problems:
    """Collects DefinitionErrors from independent checks so one 422 names every bad field."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def attempt(self, check: Callable[[], T]) -> T | None:
        """Run one check; keep its errors and return None if it fails."""
        try:
            return check()
        except DefinitionError as exc:
            self.errors.extend(exc.errors)
            return None

    def add(self, field: str, message: str) -> None:
        """Record one problem found directly."""
        self.errors.append(FieldError(field, message))

    def raise_if_any(self) -> None:
        """Raise everything collected as one DefinitionError."""
        if self.errors:
            first, *rest = self.errors
            raise DefinitionError(first.field, first.message, *rest)
