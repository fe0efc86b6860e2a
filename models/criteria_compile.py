"""Criteria evaluation: compile validated criteria into a predicate over one record dict.

Compiling happens once per criteria definition (the worker caches the result by content), so the hot
path runs one generated Python function with no per-rule dispatch. The generated source holds only
identifiers: every user string (field names, values, patterns) is passed in as a named constant,
never spliced into the source. The plain-closure compiler is the fallback for absurdly large criteria
and the reference the generated code is tested against. The semantics are documented in
models/criteria.py, which stays the import point.
"""

from __future__ import annotations

import itertools
import operator as _op
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from string import Template
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from models.criteria import Group, Rule

_NO_VALUE = frozenset({"HAS_VALUE", "DOES_NOT_HAVE_VALUE"})
_LISTS = frozenset({"IN", "NOT_IN"})
_NEGATION_OF = {"NOT_EQUALS": "EQUALS", "DOES_NOT_CONTAIN": "CONTAINS", "NOT_IN": "IN",
                "DOES_NOT_HAVE_VALUE": "HAS_VALUE"}
_COMPARE = {"EQUALS": _op.eq, "GREATER_THAN": _op.gt, "GREATER_THAN_OR_EQUALS": _op.ge,
            "LESS_THAN": _op.lt, "LESS_THAN_OR_EQUALS": _op.le}
_SYMBOL = {"EQUALS": "==", "NOT_EQUALS": "!=", "GREATER_THAN": ">", "GREATER_THAN_OR_EQUALS": ">=",
           "LESS_THAN": "<", "LESS_THAN_OR_EQUALS": "<="}
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}(?:[T ]|\s*$)")
_SCALARS = frozenset({str, int, float, bool})
_MISSING = object()
T = TypeVar("T")
Predicate = Callable[[Mapping[str, Any]], bool]
Test = Callable[[Any], bool]


def _num(v: Any) -> int | float | None:
    """v as a number if it is one or is a decimal literal; bool is not a number."""
    cls = v.__class__
    if cls is int or cls is float:
        return v  # type: ignore[no-any-return]
    if cls is str and _NUMBER.fullmatch(v):
        return int(v) if _INTEGER.fullmatch(v) else float(v)
    return None


def _date(v: Any) -> datetime | None:
    """v as an aware datetime if it is a date/datetime or an ISO string; naive means UTC."""
    if isinstance(v, date) and not isinstance(v, datetime):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if v.__class__ is str and _DATE.match(v):
        s = v.strip()
        try:
            v = datetime.fromisoformat(s[:-1] + "+00:00" if s[-1:] in ("Z", "z") else s)
        except ValueError:
            return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    return None


def _text(v: Any, case_sensitive: bool) -> str:
    """v as comparable text: booleans as true/false, case-folded unless case-sensitive."""
    if v.__class__ is bool:
        v = "true" if v else "false"
    elif v.__class__ is not str:
        v = v.isoformat() if isinstance(v, date) else str(v)
    return v if case_sensitive else v.casefold()  # type: ignore[no-any-return]


def _is_scalar(v: Any) -> bool:
    """Text, number, boolean or date: the values that compare; None, lists and objects do not."""
    return v.__class__ in _SCALARS or isinstance(v, date)


def _has_value(v: Any) -> bool:
    """False for None, "", [] and {} (and other empty collections); 0 and false are values."""
    return v is not None and not (isinstance(v, str | list | tuple | Mapping) and len(v) == 0)


def _quote(v: Any) -> str:
    """A constant in single quotes, quotes and backslashes escaped."""
    return "'" + _text(v, True).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _list_items(value: Any) -> tuple[Any, ...]:
    """IN/NOT_IN items: a list as given, or a comma-separated string split and stripped."""
    if isinstance(value, list | tuple):
        return tuple(value)
    return tuple(i.strip() for i in value.split(",") if i.strip()) if isinstance(value, str) else (value,)


@dataclass(frozen=True)
class _Const:
    """A rule constant parsed once, at compile time: as a number, as a date and as text."""

    num: int | float | None
    when: datetime | None
    text: str
    case_sensitive: bool

    @classmethod
    def of(cls, raw: Any, case_sensitive: bool) -> _Const:
        """Parse a constant in all three readings."""
        return cls(_num(raw), _date(raw), _text(raw, case_sensitive), case_sensitive)

    def pair(self, v: Any) -> tuple[Any, Any]:
        """The sides to compare: as numbers if both are, else as dates if both are, else as text."""
        if self.num is not None and (n := _num(v)) is not None:
            return n, self.num
        if self.when is not None and (d := _date(v)) is not None:
            return d, self.when
        return _text(v, self.case_sensitive), self.text

    def equals(self, v: Any) -> bool:
        """EQUALS on one value."""
        return _is_scalar(v) and _op.eq(*self.pair(v))


def _positive_test(op: str, value: Any, cs: bool) -> Test:
    """The test of a positive operator on a resolved field value."""
    if op == "HAS_VALUE":
        return _has_value
    if op == "IN":
        return _in_test(_list_items(value), cs)
    if op == "MATCHES":
        search = re.compile(_text(value, True), 0 if cs else re.IGNORECASE).search
        return lambda v: _is_scalar(v) and search(_text(v, True)) is not None
    c = _Const.of(value, cs)
    if op in _COMPARE:
        compare = _COMPARE[op]
        return lambda v: _is_scalar(v) and compare(*c.pair(v))
    if op == "CONTAINS":
        return lambda v: any(map(c.equals, v)) if isinstance(v, list | tuple) else (
            _is_scalar(v) and c.text in _text(v, cs))
    end, method = (0, str.startswith) if op == "STARTS_WITH" else (-1, str.endswith)
    return lambda v: (len(v) > 0 and c.equals(v[end])) if isinstance(v, list | tuple) else (
        _is_scalar(v) and method(_text(v, cs), c.text))


def _in_test(items: tuple[Any, ...], cs: bool) -> Test:
    """IN as set look-ups, equivalent to EQUALS against each item in turn."""
    consts = [_Const.of(item, cs) for item in items]
    numbers = frozenset(c.num for c in consts if c.num is not None)
    dates = frozenset(c.when for c in consts if c.when is not None)
    texts = frozenset(c.text for c in consts)
    not_numbers = frozenset(c.text for c in consts if c.num is None)
    not_dates = frozenset(c.text for c in consts if c.when is None)

    def test(v: Any) -> bool:
        if not _is_scalar(v):
            return False
        if (n := _num(v)) is not None:
            return n in numbers or _text(v, cs) in not_numbers
        if (d := _date(v)) is not None:
            return d in dates or _text(v, cs) in not_dates
        return _text(v, cs) in texts

    return test


def _value_test(rule: Rule) -> Test:
    """The rule's test on a resolved field value; a negative operator is its positive twin negated."""
    positive = _NEGATION_OF.get(rule.operator)
    if positive is None:
        return _positive_test(rule.operator, rule.value, rule.case_sensitive)
    test = _positive_test(positive, rule.value, rule.case_sensitive)
    return lambda v: not test(v)


def _getter(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """Resolve a field name, dotted path or not, on a record; a missing step gives None."""
    if "." not in name:
        return lambda record: record.get(name)
    steps = tuple((s, int(s) if s.isascii() and s.isdigit() else None) for s in name.split("."))

    def get(record: Mapping[str, Any]) -> Any:
        cur: Any = record.get(name, _MISSING)
        if cur is not _MISSING:
            return cur
        cur = record
        for key, index in steps:
            if isinstance(cur, Mapping):
                cur = cur.get(key)
            elif index is not None and isinstance(cur, list | tuple) and index < len(cur):
                cur = cur[index]
            else:
                return None
        return cur

    return get


def _runs(items: Sequence[T], connectors: Sequence[str]) -> list[list[T]]:
    """Split a chain into its AND runs (AND binds tighter than OR); the last connector is ignored."""
    runs = [[items[0]]]
    for connector, item in zip(connectors, items[1:], strict=False):
        if connector == "OR":
            runs.append([item])
        else:
            runs[-1].append(item)
    return runs


def _join(runs: list[list[str]], and_: str, or_: str) -> str:
    """OR of AND runs; an AND run of several operands is bracketed when it stands inside an OR."""
    if len(runs) == 1:
        return and_.join(runs[0])
    return or_.join(run[0] if len(run) == 1 else "(" + and_.join(run) + ")" for run in runs)


def _render(groups: Sequence[Group], leaf: Callable[[Rule], str], and_: str, or_: str) -> str:
    """The whole expression as text or source: every rule and every group in parentheses."""
    def group(g: Group) -> str:
        rules = _runs([f"({leaf(r)})" for r in g.rules], [r.condition for r in g.rules])
        return "(" + _join(rules, and_, or_) + ")"

    return _join(_runs([group(g) for g in groups], [g.group_condition for g in groups]), and_, or_)


def _always_true(record: Mapping[str, Any]) -> bool:
    """The predicate of absent or disabled criteria."""
    return True


def _combine(runs: list[list[Predicate]]) -> Predicate:
    """OR of AND runs of predicates, short-circuiting like the generated code."""
    def all_of(fs: tuple[Predicate, ...]) -> Predicate:
        return lambda r: all(f(r) for f in fs)

    ands = [run[0] if len(run) == 1 else all_of(tuple(run)) for run in runs]
    return ands[0] if len(ands) == 1 else (lambda r: any(f(r) for f in ands))


def _closures(groups: Sequence[Group]) -> Predicate:
    """The plain-closure predicate: the fallback, and the reference the generated code is tested against."""
    def leaf(rule: Rule) -> Predicate:
        get, test = _getter(rule.field_name), _value_test(rule)
        return lambda record: test(get(record))

    def group(g: Group) -> Predicate:
        return _combine(_runs([leaf(r) for r in g.rules], [r.condition for r in g.rules]))

    return _combine(_runs([group(g) for g in groups], [g.group_condition for g in groups]))


_GUARD = "($fast if ($v := $g).__class__ is _S else $s($v))"


def _fast_path(rule: Rule) -> tuple[str, Any] | None:
    """An inline source template for the common value type (text, or number for a number constant)."""
    op, fold = rule.operator, "" if rule.case_sensitive else ".casefold()"
    if op in _NO_VALUE:
        test, compare = ("is not None and", "!=") if op == "HAS_VALUE" else ("is None or", "==")
        return f'(($v := $g) {test} ($v {compare} "" if $v.__class__ is _S else $s($v)))', None
    if op == "MATCHES":
        search = re.compile(_text(rule.value, True), 0 if rule.case_sensitive else re.IGNORECASE).search
        return _GUARD.replace("$fast", "$c($v) is not None"), search
    if op in _LISTS:
        consts = [_Const.of(item, rule.case_sensitive) for item in _list_items(rule.value)]
        if any(c.num is not None or c.when is not None for c in consts):
            return None
        fast = f"$v{fold} {'in' if op == 'IN' else 'not in'} $c"
        return _GUARD.replace("$fast", fast), frozenset(c.text for c in consts)
    c = _Const.of(rule.value, rule.case_sensitive)
    if op in _SYMBOL and c.num is not None:
        return _GUARD.replace("$fast", f"$v {_SYMBOL[op]} $c").replace("is _S", "in _NT"), c.num
    if op in _SYMBOL:
        return None if c.when is not None else (_GUARD.replace("$fast", f"$v{fold} {_SYMBOL[op]} $c"), c.text)
    fast = {"CONTAINS": f"$c in $v{fold}", "DOES_NOT_CONTAIN": f"$c not in $v{fold}",
            "STARTS_WITH": f"$v{fold}.startswith($c)", "ENDS_WITH": f"$v{fold}.endswith($c)"}[op]
    return _GUARD.replace("$fast", fast), c.text


def _rule_source(i: int, rule: Rule, names: dict[str, Any]) -> str:
    """Python source for rule i over record `r`; its constants go into `names`, never into the source."""
    if "." in rule.field_name:
        names[f"p{i}"], get = _getter(rule.field_name), f"p{i}(r)"
    else:
        names[f"k{i}"], get = rule.field_name, f"r.get(k{i})"
    names[f"s{i}"] = _value_test(rule)
    fast = _fast_path(rule)
    if fast is None:
        return f"s{i}({get})"
    if fast[1] is not None:
        names[f"c{i}"] = fast[1]
    return Template(fast[0]).substitute(v=f"v{i}", g=get, c=f"c{i}", s=f"s{i}")


def _generate(groups: Sequence[Group]) -> Predicate:
    """One generated function for the whole expression: no per-rule call on the fast paths."""
    names: dict[str, Any] = {"_S": str, "_NT": (int, float)}
    counter = itertools.count()
    expression = _render(groups, lambda rule: _rule_source(next(counter), rule, names), " and ", " or ")
    source = (f"def _make({', '.join(names)}):\n    def predicate(r):\n        return {expression}\n"
              "    return predicate\n")
    scope: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, "<criteria>", "exec"), scope)
    predicate: Predicate = scope["_make"](**names)
    predicate.__doc__ = source  # for debugging: identifiers only, the constants live in the closure
    return predicate
