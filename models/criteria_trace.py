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
from dataclasses import dataclass
from typing import Any

from models.criteria import Criteria, Group, Predicate, Rule

#: The longest list index a dotted path step reads as one (longer digit runs are plain keys).
_MAX_INDEX_DIGITS = 18


@dataclass(frozen=True)
class RuleTrace:
    """One rule on one record: the value it saw (`missing` when the path leads nowhere) and its verdict."""

    rule: Rule
    actual: Any
    missing: bool
    matched: bool

    def to_dict(self) -> dict[str, Any]:
        """The explain answer's rule: field_name, operator, value, actual, missing, matched."""
        value = self.rule.to_dict().get("value")
        return {"field_name": self.rule.field_name, "operator": self.rule.operator, "value": value,
                "actual": self.actual, "missing": self.missing, "matched": self.matched}


@dataclass(frozen=True)
class GroupTrace:
    """One group on one record: its rules' traces and their verdicts combined by the rules' conditions."""

    group_condition: str
    matched: bool
    rules: tuple[RuleTrace, ...]

    def to_dict(self) -> dict[str, Any]:
        """The explain answer's group: group_condition, matched, rules."""
        return {"group_condition": self.group_condition, "matched": self.matched,
                "rules": [r.to_dict() for r in self.rules]}


def combine(verdicts: Sequence[bool], connectors: Sequence[str]) -> bool:
    """The documented precedence: connector i joins item i to item i + 1, the last one is ignored, AND
    binds tighter than OR (an OR of AND runs). No items: True (criteria without groups match all)."""
    if not verdicts:
        return True
    run = verdicts[0]
    for connector, verdict in zip(connectors, verdicts[1:], strict=False):
        if connector == "OR":
            if run:
                return True
            run = verdict
        else:
            run = run and verdict
    return run


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
        self._tests = tuple(tuple(rule_predicate(r) for r in g.rules) for g in self.groups)

    def trace(self, record: Mapping[str, Any]) -> tuple[GroupTrace, ...]:
        """Every group's and every rule's verdict on the record."""
        out = []
        for group, tests in zip(self.groups, self._tests, strict=True):
            rules = tuple(_trace_rule(r, test, record) for r, test in zip(group.rules, tests, strict=True))
            matched = combine([t.matched for t in rules], [r.condition for r in group.rules])
            out.append(GroupTrace(group.group_condition, matched, rules))
        return tuple(out)


def verdict(groups: Sequence[GroupTrace]) -> bool:
    """The record's verdict from its group traces, by the documented precedence."""
    return combine([g.matched for g in groups], [g.group_condition for g in groups])


def _trace_rule(rule: Rule, test: Predicate, record: Mapping[str, Any]) -> RuleTrace:
    """One rule on one record; a value the rule cannot compare does not match it."""
    actual, missing = resolve(record, rule.field_name)
    try:
        matched = bool(test(record))
    except Exception:  # noqa: BLE001 - as in a run: an uncomparable value does not match
        matched = False
    return RuleTrace(rule, actual, missing, matched)
