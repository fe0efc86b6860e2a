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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from string import Template
from typing import TYPE_CHECKING, Any, TypeVar
from unicodedata import normalize

if TYPE_CHECKING:
    from models.criteria import Group, Rule

NO_VALUE_OPERATORS = frozenset({"HAS_VALUE", "DOES_NOT_HAVE_VALUE"})
LIST_OPERATORS = frozenset({"IN", "NOT_IN"})
_NEGATION_OF = {"NOT_EQUALS": "EQUALS", "DOES_NOT_CONTAIN": "CONTAINS", "NOT_IN": "IN",
                "DOES_NOT_HAVE_VALUE": "HAS_VALUE"}
_COMPARE = {"EQUALS": _op.eq, "GREATER_THAN": _op.gt, "GREATER_THAN_OR_EQUALS": _op.ge,
            "LESS_THAN": _op.lt, "LESS_THAN_OR_EQUALS": _op.le}
_SYMBOL = {"EQUALS": "==", "NOT_EQUALS": "!=", "GREATER_THAN": ">", "GREATER_THAN_OR_EQUALS": ">=",
           "LESS_THAN": "<", "LESS_THAN_OR_EQUALS": "<="}
# Numbers and dates are ASCII digits only (re.ASCII: "\d" is [0-9] and "\s" ASCII whitespace): "٣" is text.
_NUMBER = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
_INTEGER = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
_NONZERO = re.compile(r"[1-9]")
_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}(?:[T ]|\s*$)", re.ASCII)
_SHORT_INTEGER = 32  # longer integer literals are Decimal: exact, linear, without int()'s digit limit
SCALAR_TYPES = frozenset({str, int, float, bool})
_MISSING = object()
_NAN = float("nan")
T = TypeVar("T")
Number = int | float | Decimal
Predicate = Callable[[Mapping[str, Any]], bool]
Test = Callable[[Any], bool]


def _num(v: Any) -> Number | None:
    """v as a number if it is one or is a decimal literal (ASCII digits); bool is not a number.

    Integer literals are exact (int when short, else Decimal, which compares exactly with int and
    float); other literals are floats, or Decimal where a float would overflow to infinity or
    underflow to zero. A literal whose exponent is beyond even Decimal's range is not a number.
    """
    cls = v.__class__
    if cls is int or cls is float:
        return v  # type: ignore[no-any-return]
    if cls is str and _NUMBER.fullmatch(v):
        if _INTEGER.fullmatch(v):
            return int(v) if len(v) <= _SHORT_INTEGER else _decimal(v)
        f = float(v)
        if f - f == 0.0 and (f != 0.0 or not _NONZERO.search(v.lower().partition("e")[0])):
            return f
        return _decimal(v)
    return None


def _decimal(v: str) -> Decimal | None:
    """A validated decimal literal read exactly; None if its exponent is out of Decimal's range."""
    try:
        return Decimal(v.strip())
    except InvalidOperation:
        return None


def nfc(text: str) -> str:
    """Text in Unicode NFC (ASCII is already)."""
    return text if text.isascii() else normalize("NFC", text)


def caseless(text: str) -> str:
    """Text for comparison ignoring case: NFC of the case-folded NFD (Unicode canonical caseless
    matching, in NFC), so that "Straße" equals "STRASSE" and "é" equals "e" + combining acute."""
    return text.casefold() if text.isascii() else normalize("NFC", normalize("NFD", text).casefold())


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


def as_text(v: Any, case_sensitive: bool) -> str:
    """v as comparable text: booleans as true/false; NFC, and case-folded unless case-sensitive."""
    cls = v.__class__
    if cls is bool:
        v = "true" if v else "false"
    elif cls is int:
        v = _int_text(v)
    elif cls is not str:
        v = v.isoformat() if isinstance(v, date) else str(v)
    return nfc(v) if case_sensitive else caseless(v)


def _int_text(v: int) -> str:
    """An int in decimal, however many digits (str() refuses beyond sys.get_int_max_str_digits())."""
    try:
        return str(v)
    except ValueError:
        return str(Decimal(v))


def _is_scalar(v: Any) -> bool:
    """Text, number, boolean or date: the values that compare; None, lists and objects do not."""
    return v.__class__ in SCALAR_TYPES or isinstance(v, date)


def _has_value(v: Any) -> bool:
    """False for None, "", [] and {} (and other empty collections); 0 and false are values."""
    return v is not None and not (isinstance(v, str | list | tuple | Mapping) and len(v) == 0)


def quote(v: Any) -> str:
    """A constant in single quotes, quotes and backslashes escaped."""
    return "'" + as_text(v, True).replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_items(value: Any) -> tuple[Any, ...]:
    """IN/NOT_IN items: a list as given, or a comma-separated string split and stripped."""
    if isinstance(value, list | tuple):
        return tuple(value)
    return tuple(i.strip() for i in value.split(",") if i.strip()) if isinstance(value, str) else (value,)


@dataclass(frozen=True)
class _Const:
    """A rule constant parsed once, at compile time: as a number, as a date and as text."""

    num: Number | None
    when: datetime | None
    text: str
    case_sensitive: bool

    @classmethod
    def of(cls, raw: Any, case_sensitive: bool) -> _Const:
        """Parse a constant in all three readings."""
        return cls(_num(raw), _date(raw), as_text(raw, case_sensitive), case_sensitive)

    def pair(self, v: Any) -> tuple[Any, Any]:
        """The sides to compare: as numbers if both are, else as dates if both are, else as text."""
        if (c := self.num) is not None and (n := _num(v)) is not None:
            return (n, c) if n == n and c == c else (_NAN, _NAN)  # NaN: no order, and Decimal must not see it
        if self.when is not None and (d := _date(v)) is not None:
            return d, self.when
        return as_text(v, self.case_sensitive), self.text

    def equals(self, v: Any) -> bool:
        """EQUALS on one value."""
        return _is_scalar(v) and _op.eq(*self.pair(v))


_GROUP_HEADER = re.compile(r"\(\?(?:P<[^>]*>|P=[^)]*\)|#[^)]*\)|<[=!]|[:=!>]|\([^)]*\)|<[^>]*>|[^:)]*[:)])")


def fold_pattern(pattern: str) -> str:
    """A MATCHES pattern as it is searched ignoring case: NFC, and every literal character that
    case-folds to several (ß to ss, ﬁ to fi) replaced by the group of its folding, `(?:ss)`, so that
    it matches the case-folded text the way EQUALS compares. Escapes, character classes and group
    headers (names, flags, look-arounds) are left as written; the rest is re.IGNORECASE's."""
    pattern = nfc(pattern)
    if pattern.isascii():
        return pattern
    out: list[str] = []
    i, end, class_from = 0, len(pattern), -1  # class_from: where a "]" closes the open class
    while i < end:
        ch = pattern[i]
        if ch == "\\":
            stop = pattern.find("}", i) + 1 if pattern.startswith("N{", i + 1) else i + 2
            stop = stop if stop > i else end
            out.append(pattern[i:stop])
            i = stop
            continue
        if class_from >= 0:
            class_from = -1 if ch == "]" and i >= class_from else class_from
        elif ch == "[":
            class_from = i + 2 if pattern.startswith("^", i + 1) else i + 1
            class_from += 1  # "]" first in a class is a literal
        elif ch == "(" and (header := _GROUP_HEADER.match(pattern, i)):
            out.append(header.group())
            i = header.end()
            continue
        elif len(folded := caseless(ch)) > 1:
            ch = f"(?:{re.escape(folded)})"
        out.append(ch)
        i += 1
    return "".join(out)


def compile_pattern(value: Any, case_sensitive: bool) -> re.Pattern[str]:
    """The compiled MATCHES pattern of a rule value (raises re.error, OverflowError, RecursionError)."""
    text = as_text(value, True)
    return re.compile(text) if case_sensitive else re.compile(fold_pattern(text), re.IGNORECASE)


def _matches_test(value: Any, cs: bool) -> Test:
    """MATCHES: a search of the NFC text; ignoring case, also of the case-folded text if not ASCII
    (for ASCII text re.IGNORECASE already is case folding)."""
    search = compile_pattern(value, cs).search

    def test(v: Any) -> bool:
        if not _is_scalar(v):
            return False
        text = as_text(v, True)
        if search(text) is not None:
            return True
        return not cs and not text.isascii() and search(caseless(text)) is not None

    return test


def _positive_test(op: str, value: Any, cs: bool) -> Test:
    """The test of a positive operator on a resolved field value."""
    if op == "HAS_VALUE":
        return _has_value
    if op == "IN":
        return _in_test(list_items(value), cs)
    if op == "MATCHES":
        return _matches_test(value, cs)
    c = _Const.of(value, cs)
    if op in _COMPARE:
        compare = _COMPARE[op]
        return lambda v: _is_scalar(v) and compare(*c.pair(v))
    if op == "CONTAINS":
        return lambda v: any(map(c.equals, v)) if isinstance(v, list | tuple) else (
            _is_scalar(v) and c.text in as_text(v, cs))
    end, method = (0, str.startswith) if op == "STARTS_WITH" else (-1, str.endswith)
    return lambda v: (len(v) > 0 and c.equals(v[end])) if isinstance(v, list | tuple) else (
        _is_scalar(v) and method(as_text(v, cs), c.text))


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
            return n in numbers or as_text(v, cs) in not_numbers
        if (d := _date(v)) is not None:
            return d in dates or as_text(v, cs) in not_dates
        return as_text(v, cs) in texts

    return test


def value_test(rule: Rule) -> Test:
    """The rule's test on a resolved field value; a negative operator is its positive twin negated."""
    positive = _NEGATION_OF.get(rule.operator)
    if positive is None:
        return _positive_test(rule.operator, rule.value, rule.case_sensitive)
    test = _positive_test(positive, rule.value, rule.case_sensitive)
    return lambda v: not test(v)


def getter(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """Resolve a field name, dotted path or not, on a record; a missing step gives None."""
    if "." not in name:
        return lambda record: record.get(name)
    steps = tuple((s, int(s) if s.isascii() and s.isdigit() and len(s) <= 18 else None)  # longer: no list
                  for s in name.split("."))

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


def render(groups: Sequence[Group], leaf: Callable[[Rule], str], and_: str, or_: str) -> str:
    """The whole expression as text or source: every rule and every group in parentheses."""
    def group(g: Group) -> str:
        rules = _runs([f"({leaf(r)})" for r in g.rules], [r.condition for r in g.rules])
        return "(" + _join(rules, and_, or_) + ")"

    return _join(_runs([group(g) for g in groups], [g.group_condition for g in groups]), and_, or_)


def always_true(record: Mapping[str, Any]) -> bool:
    """The predicate of absent or disabled criteria."""
    return True


def _combine(runs: list[list[Predicate]]) -> Predicate:
    """OR of AND runs of predicates, short-circuiting like the generated code."""
    def all_of(fs: tuple[Predicate, ...]) -> Predicate:
        return lambda r: all(f(r) for f in fs)

    ands = [run[0] if len(run) == 1 else all_of(tuple(run)) for run in runs]
    return ands[0] if len(ands) == 1 else (lambda r: any(f(r) for f in ands))


def reference_predicate(groups: Sequence[Group]) -> Predicate:
    """The plain-closure predicate: the fallback, and the reference the generated code is tested against."""
    def leaf(rule: Rule) -> Predicate:
        get, test = getter(rule.field_name), value_test(rule)
        return lambda record: test(get(record))

    def group(g: Group) -> Predicate:
        return _combine(_runs([leaf(r) for r in g.rules], [r.condition for r in g.rules]))

    return _combine(_runs([group(g) for g in groups], [g.group_condition for g in groups]))


def careful_predicate(groups: Sequence[Group], note: Callable[[str], None]) -> Predicate:
    """The closure predicate, rule by rule, where a rule that raises on a record's value counts as not
    matching (negative operators included) and is reported to `note` by its place, never its value."""
    def leaf(i: int, j: int, rule: Rule) -> Predicate:
        get, test = getter(rule.field_name), value_test(rule)
        name = rule.field_name if len(rule.field_name) <= 60 else rule.field_name[:57] + "..."
        where = f"rule {j + 1} of group {i + 1} ({name} {rule.operator})"

        def careful(record: Mapping[str, Any]) -> bool:
            try:
                return test(get(record))
            except Exception:  # noqa: BLE001 - a value that cannot be compared does not match
                note(where)
                return False

        return careful

    def group(i: int, g: Group) -> Predicate:
        leaves = [leaf(i, j, r) for j, r in enumerate(g.rules)]
        return _combine(_runs(leaves, [r.condition for r in g.rules]))

    return _combine(_runs([group(i, g) for i, g in enumerate(groups)], [g.group_condition for g in groups]))


# The fast path is ASCII text (or a number, for a number constant): ASCII is already NFC and its case
# folding is str.casefold(); any other value, non-ASCII text included, goes to the rule's full test.
_GUARD = "($fast if ($v := $g).__class__ is _S and $v.isascii() else $s($v))"
_ANY_TEXT = "($fast if ($v := $g).__class__ is _S else $s($v))"
_NUMBER_GUARD = "($fast if ($v := $g).__class__ in _NT else $s($v))"
# Whole-text equality (EQUALS, IN and their negations) with ASCII constants needs no ASCII check: the only
# characters whose NFC or caseless() form is ASCII other than their str.casefold() are U+037E GREEK
# QUESTION MARK (;), U+1FEF GREEK VARIA (`) and U+212A KELVIN SIGN (K), and text whose casefold() is
# ASCII is its own caseless() (the tests check both over every code point). So against ASCII constants
# without these three characters, casefold() (or the text itself, case-sensitive) decides exactly.
NON_ASCII_REACHES = frozenset(";`K")
_WHOLE = frozenset({"EQUALS", "NOT_EQUALS", "IN", "NOT_IN"})


def fast_path(rule: Rule) -> tuple[str, Any] | None:
    """An inline source template for the common value type (ASCII text, or number for a number constant)."""
    op, fold = rule.operator, "" if rule.case_sensitive else ".casefold()"
    if op in NO_VALUE_OPERATORS:
        test, compare = ("is not None and", "!=") if op == "HAS_VALUE" else ("is None or", "==")
        return f'(($v := $g) {test} ($v {compare} "" if $v.__class__ is _S else $s($v)))', None
    if op == "MATCHES":
        search = compile_pattern(rule.value, rule.case_sensitive).search
        return _GUARD.replace("$fast", "$c($v) is not None"), search
    if op in LIST_OPERATORS:
        consts = [_Const.of(item, rule.case_sensitive) for item in list_items(rule.value)]
        if any(c.num is not None or c.when is not None for c in consts):
            return None
        texts = frozenset(c.text for c in consts)
        fast = f"$v{fold} {'in' if op == 'IN' else 'not in'} $c"
        return (_ANY_TEXT if _plain(texts) else _GUARD).replace("$fast", fast), texts
    c = _Const.of(rule.value, rule.case_sensitive)
    if op in _SYMBOL and c.num is not None:  # a Decimal constant must not meet NaN: the full test
        if c.num.__class__ is Decimal:
            return None
        return _NUMBER_GUARD.replace("$fast", f"$v {_SYMBOL[op]} $c"), c.num
    if op in _SYMBOL:
        if c.when is not None:
            return None
        guard = _ANY_TEXT if op in _WHOLE and _plain((c.text,)) else _GUARD
        return guard.replace("$fast", f"$v{fold} {_SYMBOL[op]} $c"), c.text
    fast = {"CONTAINS": f"$c in $v{fold}", "DOES_NOT_CONTAIN": f"$c not in $v{fold}",
            "STARTS_WITH": f"$v{fold}.startswith($c)", "ENDS_WITH": f"$v{fold}.endswith($c)"}[op]
    return _GUARD.replace("$fast", fast), c.text


def _plain(texts: Iterable[str]) -> bool:
    """Whether whole-text equality with these constants can skip the ASCII check (see NON_ASCII_REACHES)."""
    return all(t.isascii() and NON_ASCII_REACHES.isdisjoint(t) for t in texts)


def _rule_source(i: int, rule: Rule, names: dict[str, Any]) -> str:
    """Python source for rule i over record `r`; its constants go into `names`, never into the source."""
    if "." in rule.field_name:
        names[f"p{i}"], get = getter(rule.field_name), f"p{i}(r)"
    else:
        names[f"k{i}"], get = rule.field_name, f"r.get(k{i})"
    names[f"s{i}"] = value_test(rule)
    fast = fast_path(rule)
    if fast is None:
        return f"s{i}({get})"
    if fast[1] is not None:
        names[f"c{i}"] = fast[1]
    return Template(fast[0]).substitute(v=f"v{i}", g=get, c=f"c{i}", s=f"s{i}")


def generate(groups: Sequence[Group]) -> Predicate:
    """One generated function for the whole expression: no per-rule call on the fast paths."""
    names: dict[str, Any] = {"_S": str, "_NT": (int, float)}
    counter = itertools.count()
    expression = render(groups, lambda rule: _rule_source(next(counter), rule, names), " and ", " or ")
    source = (f"def _make({', '.join(names)}):\n    def predicate(r):\n        return {expression}\n"
              "    return predicate\n")
    scope: dict[str, Any] = {"__builtins__": {}}
    exec(compile(source, "<criteria>", "exec"), scope)
    predicate: Predicate = scope["_make"](**names)
    predicate.__doc__ = source  # for debugging: identifiers only, the constants live in the closure
    return predicate
