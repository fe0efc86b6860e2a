"""Automation criteria (additional_criteria_details): validation, trigger_condition_text, a predicate.

Pure: no I/O. DESIGN.md "Criteria" is the contract; where it is silent this module decides:
- `additional_criteria` false or no groups: every record matches and the text is "All records".
- Details are validated even when `additional_criteria` is false (flipping the flag later must not fail).
- A blank (whitespace-only) value counts as missing; IN/NOT_IN comma strings drop empty items.
- Numbers are plain decimal literals of ASCII digits (no inf/nan/underscores; bool is not a number),
  of any length: long integer literals (and literals beyond a float's range) are read exactly as
  Decimal, never through int()'s digit limit; dates are ISO `YYYY-MM-DD[THH:MM[:SS[.f]]][Z|±HH:MM]`
  (ASCII digits), naive ones UTC, a date is midnight UTC.
- Text compares in NFC; ignoring case, as NFC of the case-folded NFD (`caseless`), for every text
  operator. MATCHES searches the NFC text (ignoring case, also its case-folded form when it is not
  ASCII) with re.IGNORECASE, the pattern's literal characters that fold to several read as their
  folding (`ß` as `(?:ss)`); see criteria_compile.fold_pattern.
- Ordered comparison of values that are not both numbers nor both dates compares their text.
- Text of a boolean is "true"/"false". Lists and objects are not scalars: only HAS_VALUE, CONTAINS
  (an element equals the value), STARTS_WITH / ENDS_WITH (the first / last element equals it) look
  inside them; every other positive operator is false for them (and its negation true).
- Negative operators are exactly the negation of their positive twin, so a missing field passes them.
- A dotted field name is first looked up as a whole top-level key, then step by step; a step of
  ASCII digits indexes a list (a dict still uses it as a key).
- case_sensitive shows in the text as ", case-sensitive" after the value.

The predicate itself (value coercion, the closure reference and the generated source) is
models/criteria_compile.py; this module stays the import point for both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

from models.criteria_compile import (
    LIST_OPERATORS,
    NO_VALUE_OPERATORS,
    SCALAR_TYPES,
    Predicate,
    always_true,
    as_text,
    caseless,
    compile_pattern,
    fast_path,
    generate,
    getter,
    list_items,
    nfc,
    quote,
    reference_predicate,
    render,
    value_test,
)
from models.errors import DefinitionError, FieldError

__all__ = [
    "ALL_RECORDS", "OPERATORS", "ROOT", "Criteria", "Group", "Predicate", "Rule", "caseless",
    "compile_problems", "nfc", "parse_criteria", "reference_predicate",
]

ROOT = "additional_criteria_details"
ALL_RECORDS = "All records"
OPERATORS = (
    "EQUALS", "NOT_EQUALS", "CONTAINS", "DOES_NOT_CONTAIN", "STARTS_WITH", "ENDS_WITH", "HAS_VALUE",
    "DOES_NOT_HAVE_VALUE", "GREATER_THAN", "GREATER_THAN_OR_EQUALS", "LESS_THAN", "LESS_THAN_OR_EQUALS",
    "IN", "NOT_IN", "MATCHES",
)
_ALIASES = {
    "EQUAL": "EQUALS", "NOT_EQUAL": "NOT_EQUALS", "DOES_NOT_EQUAL": "NOT_EQUALS",
    "NOT_CONTAINS": "DOES_NOT_CONTAIN", "HAS_NO_VALUE": "DOES_NOT_HAVE_VALUE",
    "GREATER_THAN_OR_EQUAL": "GREATER_THAN_OR_EQUALS", "LESS_THAN_OR_EQUAL": "LESS_THAN_OR_EQUALS",
}
_PHRASES = {
    "EQUALS": "equals $v", "NOT_EQUALS": "does not equal $v", "CONTAINS": "contains $v",
    "DOES_NOT_CONTAIN": "does not contain $v", "STARTS_WITH": "starts with $v", "ENDS_WITH": "ends with $v",
    "HAS_VALUE": "has a value", "DOES_NOT_HAVE_VALUE": "has no value", "GREATER_THAN": "is greater than $v",
    "GREATER_THAN_OR_EQUALS": "is greater than or equal to $v", "LESS_THAN": "is less than $v",
    "LESS_THAN_OR_EQUALS": "is less than or equal to $v", "IN": "is one of ($v)",
    "NOT_IN": "is not one of ($v)", "MATCHES": "matches /$v/",
}
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}


@dataclass(frozen=True)
class Rule:
    """One test of one record field; `condition` joins it to the next rule of its group."""

    field_name: str
    operator: str
    value: Any
    condition: str
    case_sensitive: bool

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON form, shaped like the request's rule."""
        out: dict[str, Any] = {"field_name": self.field_name, "operator": self.operator}
        if self.operator not in NO_VALUE_OPERATORS:
            out["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        out["condition"] = self.condition
        return {**out, "case_sensitive": True} if self.case_sensitive else out

    @property
    def phrase(self) -> str:
        """The rule in plain English, for trigger_condition_text."""
        if self.operator in LIST_OPERATORS:
            shown = ", ".join(quote(item) for item in list_items(self.value))
        elif self.operator == "MATCHES":
            shown = as_text(self.value, True).replace("/", "\\/")
        else:
            shown = quote(self.value)
        suffix = ", case-sensitive" if self.case_sensitive and self.operator not in NO_VALUE_OPERATORS else ""
        return f"{self.field_name} {Template(_PHRASES[self.operator]).substitute(v=shown)}{suffix}"


@dataclass(frozen=True)
class Group:
    """A parenthesised run of rules; `group_condition` joins it to the next group."""

    rules: tuple[Rule, ...]
    group_condition: str


@dataclass(frozen=True)
class Criteria:
    """Validated criteria of one automation: shown as text, stored as JSON, compiled for the hot path."""

    groups: tuple[Group, ...]
    enabled: bool

    @property
    def text(self) -> str:
        """trigger_condition_text: fully bracketed so that no precedence rule needs to be known."""
        if not self.enabled or not self.groups:
            return ALL_RECORDS
        return render(self.groups, lambda rule: rule.phrase, " AND ", " OR ")

    def compile(self) -> Predicate:
        """A predicate over one record, built once: generated Python with constants passed by name."""
        if not self.enabled or not self.groups:
            return always_true
        try:
            return generate(self.groups)
        except (SyntaxError, RecursionError, MemoryError):  # absurdly large criteria: plain closures
            return reference_predicate(self.groups)

    def to_list(self) -> list[dict[str, Any]]:
        """The stored JSON form, shaped like the request's additional_criteria_details."""
        return [{"group_condition": g.group_condition, "rules": [r.to_dict() for r in g.rules]}
                for g in self.groups]


def parse_criteria(groups: Any, enabled: bool = True) -> Criteria:
    """Validate the request's additional_criteria_details; every problem is named by its field path."""
    errors: list[FieldError] = []
    flag = _boolean(enabled, "additional_criteria", errors)
    parsed: list[Group | None] = []
    if groups is not None and not isinstance(groups, list | tuple):
        errors.append(FieldError(ROOT, "must be a list of groups"))
    elif groups is not None:
        parsed = [_parse_group(raw, f"{ROOT}.{i}", errors) for i, raw in enumerate(groups)]
    if errors:
        raise DefinitionError(errors[0].field, errors[0].message, *errors[1:])
    return Criteria(tuple(g for g in parsed if g is not None), bool(flag))


def _parse_group(raw: Any, path: str, errors: list[FieldError]) -> Group | None:
    """One group: a connector and a non-empty list of rules."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object with group_condition and rules"))
        return None
    before = len(errors)
    condition = _connector(raw.get("group_condition"), f"{path}.group_condition", errors)
    rules = raw.get("rules")
    if not isinstance(rules, list | tuple) or not rules:
        errors.append(FieldError(f"{path}.rules", "must be a non-empty list of rules"))
        return None
    parsed = [_parse_rule(r, f"{path}.rules.{j}", errors) for j, r in enumerate(rules)]
    if len(errors) > before or condition is None:
        return None
    return Group(tuple(r for r in parsed if r is not None), condition)


def _parse_rule(raw: Any, path: str, errors: list[FieldError]) -> Rule | None:
    """One rule; problems are reported in the order of the request's keys."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object with field_name, operator, value and condition"))
        return None
    before = len(errors)
    name = raw.get("field_name")
    if not isinstance(name, str) or not name.strip():
        errors.append(FieldError(f"{path}.field_name", "is required"))
    operator = _operator(raw.get("operator"), f"{path}.operator", errors)
    value = raw.get("value")
    problem = _value_problem(operator, value) if operator else None
    if problem:
        errors.append(FieldError(f"{path}.value{problem[0]}", problem[1]))
    condition = _connector(raw.get("condition"), f"{path}.condition", errors)
    sensitive = _boolean(raw.get("case_sensitive"), f"{path}.case_sensitive", errors)
    if len(errors) > before or not isinstance(name, str) or operator is None or condition is None:
        return None
    if operator in NO_VALUE_OPERATORS:
        value = None
    elif isinstance(value, list | tuple):
        value = tuple(value)
    return Rule(name.strip(), operator, value, condition, bool(sensitive))


def _operator(raw: Any, path: str, errors: list[FieldError]) -> str | None:
    """The canonical upper-case operator name (spaces and hyphens read as underscores)."""
    name = re.sub(r"[\s-]+", "_", raw.strip()).upper() if isinstance(raw, str) else ""
    name = _ALIASES.get(name, name)
    if name in OPERATORS:
        return name
    errors.append(FieldError(path, f"unknown operator {raw!r}; expected one of {', '.join(OPERATORS)}"))
    return None


def _connector(raw: Any, path: str, errors: list[FieldError]) -> str | None:
    """AND or OR; missing or empty means AND."""
    name = raw.strip().upper() if isinstance(raw, str) else "" if raw is None else None
    if name in ("", "AND", "OR"):
        return name or "AND"
    errors.append(FieldError(path, "must be AND or OR"))
    return None


def _boolean(raw: Any, path: str, errors: list[FieldError]) -> bool | None:
    """A flag as the SDKs send it: a boolean, "true"/"false", 1/0; missing means false."""
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    key = raw.strip().lower() if isinstance(raw, str) else str(raw) if raw in (0, 1) else None
    if key in _BOOLEANS:
        return _BOOLEANS[key]
    errors.append(FieldError(path, "must be true or false"))
    return None


def _value_problem(operator: str, raw: Any) -> tuple[str, str] | None:
    """Why the value does not suit the operator, as (path suffix, message); None when it does."""
    lists = operator in LIST_OPERATORS
    if operator in NO_VALUE_OPERATORS:
        return None
    if lists and isinstance(raw, list | tuple):
        bad = [i for i, item in enumerate(raw) if item.__class__ not in SCALAR_TYPES]
        if bad:
            return f".{bad[0]}", "must be a text, number or boolean"
    elif raw is not None and raw.__class__ not in SCALAR_TYPES:
        return "", "must be a text, number, boolean or list" if lists else "must be a text, number or boolean"
    if raw is None or (isinstance(raw, str) and not raw.strip()) or (lists and not list_items(raw)):
        return "", f"is required for operator {operator}"
    if operator == "MATCHES":
        try:
            compile_pattern(raw, True)
            compile_pattern(raw, False)
        except (re.error, OverflowError, RecursionError) as exc:
            return "", f"is not a valid regular expression: {exc}"
    return None


def compile_problems(criteria: Criteria) -> list[FieldError]:
    """Compile validated criteria the way the worker will, rule by rule; what fails is named by its
    field path (a rule's field_name or value), so that nothing stored can fail a run when it compiles."""
    errors: list[FieldError] = []
    for i, group in enumerate(criteria.groups):
        for j, rule in enumerate(group.rules):
            path = f"{ROOT}.{i}.rules.{j}"
            try:
                getter(rule.field_name)
            except Exception as exc:  # noqa: BLE001 - any failure is reported, never raised later
                errors.append(FieldError(f"{path}.field_name", f"cannot be evaluated ({type(exc).__name__})"))
            try:
                value_test(rule)
                fast_path(rule)
            except Exception as exc:  # noqa: BLE001
                errors.append(FieldError(f"{path}.value", f"cannot be compiled ({type(exc).__name__})"))
    if not errors and criteria.groups:
        try:
            criteria.compile()({})
        except Exception as exc:  # noqa: BLE001
            errors.append(FieldError(ROOT, f"cannot be compiled ({type(exc).__name__})"))
    return errors
