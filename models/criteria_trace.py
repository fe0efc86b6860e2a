"""Why a record matches or not: each group's and each rule's verdict, with the value each rule saw.

Pure: no I/O. Built from the parsed criteria (models/criteria.py, public names only); each rule's
verdict is the compiler's own, a one-rule predicate compiled once, so the trace never holds a second
opinion of what an operator means. Only the value shown (`actual`, `missing`) is looked up here, the
way DESIGN "Criteria" documents a dotted path: first as a whole top-level key, then step by step, a
step of ASCII digits indexing a list. A rule whose predicate raises on a value does not match, as in a
run (tasks/predicates.TolerantPredicate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from models.criteria import Criteria, Group, Predicate, Rule

#: The longest list index a dotted path step reads as one (longer digit runs are plain keys).
_MAX_INDEX_DIGITS = 18


class RuleTrace(TypedDict):
    """One rule on one record, as the explain answer shows it: the rule, the value it saw (`missing` when
    the path leads nowhere) and its verdict."""

    field_name: str
    operator: str
    value: Any
    actual: Any
    missing: bool
    matched: bool


class GroupTrace(TypedDict):
    """One group on one record: its rules' traces and their verdicts combined by the rules' conditions."""

    group_condition: str
    matched: bool
    rules: list[RuleTrace]


def combine(verdicts: Sequence[bool], connectors: Sequence[str]) -> bool:
    """The documented precedence: connector i joins item i to item i + 1, the last one is ignored, AND
    binds tighter than OR (an OR of AND runs). No items: True (criteria without groups match all)."""
    return _holds(verdicts, and_runs(connectors, len(verdicts)))


def and_runs(connectors: Sequence[str], count: int) -> tuple[tuple[int, int], ...]:
    """The (start, stop) slices of the AND runs of `count` items joined by `connectors`."""
    starts = [0, *(i + 1 for i, c in enumerate(connectors[:count - 1]) if c == "OR")]
    return tuple(zip(starts, [*starts[1:], count], strict=True)) if count else ()


def _holds(verdicts: Sequence[bool], runs: tuple[tuple[int, int], ...]) -> bool:
    """Whether some AND run holds entirely (no runs: True)."""
    if len(runs) == 1:  # all AND: the usual group
        return all(verdicts)
    return not runs or any(all(verdicts[start:stop]) for start, stop in runs)


def resolve(record: Mapping[str, Any], field_name: str) -> tuple[Any, bool]:
    """(value, missing): the value a rule's field name leads to in the record, or (None, True)."""
    if field_name in record:
        return record[field_name], False
    if "." not in field_name:
        return None, True
    current: Any = record
    for step in field_name.split("."):
        if isinstance(current, Mapping):
            if step not in current:
                return None, True
            current = current[step]
        elif (isinstance(current, list | tuple) and step.isascii() and step.isdigit()
              and len(step) <= _MAX_INDEX_DIGITS and int(step) < len(current)):
            current = current[int(step)]
        else:
            return None, True
    return current, False


def rule_predicate(rule: Rule) -> Predicate:
    """The compiler's predicate of this one rule (as a group of its own)."""
    return Criteria((Group((rule,), "AND"),), True).compile()


class Tracer:
    """The per-rule trace of one set of criteria, compiled once and applied to many records."""

    def __init__(self, criteria: Criteria) -> None:
        self.groups: tuple[Group, ...] = criteria.groups if criteria.enabled else ()
        self._plans = tuple((g.group_condition, and_runs([r.condition for r in g.rules], len(g.rules)),
                             tuple(_plan(r) for r in g.rules)) for g in self.groups)

    def trace(self, record: Mapping[str, Any]) -> list[GroupTrace]:
        """Every group's and every rule's verdict on the record (fresh dicts, the answer's shape)."""
        out: list[GroupTrace] = []
        for group_condition, runs, plans in self._plans:
            rules: list[RuleTrace] = []
            for field_name, operator, value, test in plans:
                actual, missing = resolve(record, field_name)
                try:
                    matched = bool(test(record))
                except Exception:  # noqa: BLE001 - as in a run: an uncomparable value does not match
                    matched = False
                rules.append({"field_name": field_name, "operator": operator, "value": value,
                              "actual": actual, "missing": missing, "matched": matched})
            matched = _holds([r["matched"] for r in rules], runs)
            out.append({"group_condition": group_condition, "matched": matched, "rules": rules})
        return out


def verdict(groups: Sequence[GroupTrace]) -> bool:
    """The record's verdict from its group traces, by the documented precedence."""
    return combine([g["matched"] for g in groups], [g["group_condition"] for g in groups])


def _plan(rule: Rule) -> tuple[str, str, Any, Predicate]:
    """What tracing a rule needs: its field, operator and value as shown (null for HAS_VALUE and its
    twin, a list for IN and NOT_IN), and its compiled predicate."""
    return rule.field_name, rule.operator, rule.to_dict().get("value"), rule_predicate(rule)
