"""Schemathesis hooks for the contract run (schemathesis.toml loads this module).

One check of our own, stricter than the built-in positive_data_acceptance it stands beside: where an
operation names fields in `x-server-validated-fields` (what JSON Schema cannot say: a schedule's
grammar, a partner function that must exist, criteria that must compile, text that must parse as a JSON
object), schemathesis.toml lets a request the document allows be refused with a 422, and this check
then requires every error of that 422 to name one of those fields, or a part of one. Any other field
refused means the document and the server disagree.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

SERVER_VALIDATED = "x-server-validated-fields"


def _names_a_listed_field(field: str, listed: list[str]) -> bool:
    """The field is one of `listed`, or lies inside one (`...additional_criteria_details.0.rules`)."""
    return any(field == name or field.startswith(f"{name}.") for name in listed)


def refused_fields(body: bytes | str) -> list[str]:
    """The `field` of each error in a 422 body (["body"] when the body is not the errors shape)."""
    try:
        data: Any = json.loads(body)
        return [str(e["field"]) for e in data["errors"]]
    except (ValueError, KeyError, TypeError):
        return ["body"]


@schemathesis.check
def refused_only_for_server_validated_fields(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request refused with 422 names only fields the document says it cannot judge."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    listed = list(case.operation.definition.raw.get(SERVER_VALIDATED, []))
    if not listed:
        return None  # positive_data_acceptance itself refuses this 422
    unexpected = [f for f in refused_fields(response.content) if not _names_a_listed_field(f, listed)]
    if unexpected:
        raise AssertionError(
            f"a request the document allows was refused for {', '.join(unexpected)}, which is not among "
            f"the fields the server validates beyond the document ({', '.join(listed)})")
    return None
