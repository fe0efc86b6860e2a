"""Criteria: every operator, the precedence rule, the seeds' examples, validation paths, the stored form."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.criteria import Criteria, Group, Rule, caseless, nfc, parse_criteria, reference_predicate
from models.criteria_compile import NON_ASCII_REACHES, fold_pattern
from models.errors import DefinitionError

MISSING = object()

SEED_000 = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
    {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
]}]
SEED_000_TEXT = "((AccountNumber equals '1QKGUL') AND (ContactID has no value))"

SEED_001 = [
    {"group_condition": "AND", "rules": [
        {"field_name": "FIELD_NAME_1", "operator": "EQUALS", "value": "VALUE_1", "condition": "AND"}]},
    {"group_condition": "OR", "rules": [
        {"field_name": "FIELD_NAME_2", "operator": "HAS_VALUE", "condition": "OR"},
        {"field_name": "FIELD_NAME_3", "operator": "CONTAINS", "value": "STRING_VALUE", "condition": "AND"}]},
    {"group_condition": "AND", "rules": [
        {"field_name": "FIELD_NAME_4", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
        {"field_name": "FIELD_NAME_5", "operator": "EQUALS", "value": "VALUE_2", "condition": "AND"}]},
]
SEED_001_TEXT = ("(((FIELD_NAME_1 equals 'VALUE_1')) AND ((FIELD_NAME_2 has a value) OR "
                 "(FIELD_NAME_3 contains 'STRING_VALUE'))) OR ((FIELD_NAME_4 has no value) AND "
                 "(FIELD_NAME_5 equals 'VALUE_2'))")


def one_rule(operator: str, value: Any = MISSING, **extra: Any) -> list[dict[str, Any]]:
    """A single-group, single-rule criteria on field F."""
    rule: dict[str, Any] = {"field_name": "F", "operator": operator, "condition": "AND", **extra}
    if value is not MISSING:
        rule["value"] = value
    return [{"group_condition": "AND", "rules": [rule]}]


def record_with(field_value: Any) -> dict[str, Any]:
    """A record whose F is field_value (absent for MISSING), plus noise."""
    record: dict[str, Any] = {"Other": "x"}
    if field_value is not MISSING:
        record["F"] = field_value
    return record


def check(groups: Any, record: dict[str, Any], expected: bool) -> None:
    """The generated predicate and the plain-closure reference both give `expected`."""
    criteria = parse_criteria(groups)
    assert criteria.compile()(record) is expected
    assert reference_predicate(criteria.groups)(record) is expected


# (operator, rule value, record value, expected)
OPERATOR_CASES = [
    ("EQUALS", "abc", "ABC", True),
    ("EQUALS", "abc", "abd", False),
    ("EQUALS", "abc", MISSING, False),
    ("EQUALS", "abc", None, False),
    ("EQUALS", 10, "10.0", True),
    ("EQUALS", "10", 10, True),
    ("EQUALS", "abc", 5, False),
    ("EQUALS", True, "TRUE", True),
    ("EQUALS", "true", True, True),
    ("EQUALS", "2024-01-01", "2024-01-01T00:00:00Z", True),
    ("EQUALS", "2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z", True),
    ("EQUALS", "x", ["x"], False),
    ("EQUALS", "x", {"x": 1}, False),
    ("NOT_EQUALS", "abc", "ABC", False),
    ("NOT_EQUALS", "abc", "x", True),
    ("NOT_EQUALS", "abc", MISSING, True),
    ("NOT_EQUALS", 10, 11, True),
    ("NOT_EQUALS", 10, "10", False),
    ("NOT_EQUALS", "x", ["x"], True),
    ("CONTAINS", "vip", "Big VIP client", True),
    ("CONTAINS", "vip", "regular", False),
    ("CONTAINS", "vip", MISSING, False),
    ("CONTAINS", "b", ["a", "B"], True),
    ("CONTAINS", "b", ["abc"], False),
    ("CONTAINS", 5, ["5.0", "x"], True),
    ("CONTAINS", 5, 1500, True),
    ("CONTAINS", "b", {"b": 1}, False),
    ("DOES_NOT_CONTAIN", "vip", "VIP", False),
    ("DOES_NOT_CONTAIN", "vip", "x", True),
    ("DOES_NOT_CONTAIN", "vip", MISSING, True),
    ("DOES_NOT_CONTAIN", "b", ["a"], True),
    ("STARTS_WITH", "ab", "ABC", True),
    ("STARTS_WITH", "bc", "abc", False),
    ("STARTS_WITH", "ab", MISSING, False),
    ("STARTS_WITH", "a", ["A", "b"], True),
    ("STARTS_WITH", "b", ["a", "b"], False),
    ("STARTS_WITH", "a", [], False),
    ("STARTS_WITH", 1, 123, True),
    ("ENDS_WITH", "bc", "ABC", True),
    ("ENDS_WITH", "ab", "abc", False),
    ("ENDS_WITH", "bc", None, False),
    ("ENDS_WITH", "b", ["a", "B"], True),
    ("ENDS_WITH", "true", False, False),
    ("HAS_VALUE", MISSING, "x", True),
    ("HAS_VALUE", MISSING, "", False),
    ("HAS_VALUE", MISSING, MISSING, False),
    ("HAS_VALUE", MISSING, None, False),
    ("HAS_VALUE", MISSING, [], False),
    ("HAS_VALUE", MISSING, {}, False),
    ("HAS_VALUE", MISSING, 0, True),
    ("HAS_VALUE", MISSING, False, True),
    ("HAS_VALUE", MISSING, " ", True),
    ("HAS_VALUE", MISSING, [None], True),
    ("DOES_NOT_HAVE_VALUE", MISSING, "", True),
    ("DOES_NOT_HAVE_VALUE", MISSING, MISSING, True),
    ("DOES_NOT_HAVE_VALUE", MISSING, "x", False),
    ("DOES_NOT_HAVE_VALUE", MISSING, 0, False),
    ("DOES_NOT_HAVE_VALUE", MISSING, [], True),
    ("GREATER_THAN", 10, 11, True),
    ("GREATER_THAN", 10, "9", False),  # as numbers, although "9" > "10" as text
    ("GREATER_THAN", 10, 10, False),
    ("GREATER_THAN", 10, MISSING, False),
    ("GREATER_THAN", "2024-01-01", "2024-01-02", True),
    ("GREATER_THAN", "b", "C", True),
    ("GREATER_THAN", 10, "abc", True),  # mismatch: text "abc" > "10"
    ("GREATER_THAN", 10, [11], False),
    ("GREATER_THAN_OR_EQUALS", 10, 10, True),
    ("GREATER_THAN_OR_EQUALS", 10, 9.99, False),
    ("GREATER_THAN_OR_EQUALS", "1.5", 1.5, True),
    ("GREATER_THAN_OR_EQUALS", 10, MISSING, False),
    ("LESS_THAN", 10, 9, True),
    ("LESS_THAN", 10, "abc", False),  # mismatch: text "abc" < "10" is false
    ("LESS_THAN", "2024-01-02", "2024-01-01T23:59:59", True),
    ("LESS_THAN", "2024-01-02", "2024-01-02T00:30:00+01:00", True),  # 23:30 UTC the day before
    ("LESS_THAN", "2024-01-02", "2024-01-02T00:30:00Z", False),
    ("LESS_THAN", 10, None, False),
    ("LESS_THAN_OR_EQUALS", 10, 10, True),
    ("LESS_THAN_OR_EQUALS", 10, "10.5", False),
    ("LESS_THAN_OR_EQUALS", -1, "-1e0", True),
    ("LESS_THAN_OR_EQUALS", 10, MISSING, False),
    ("IN", "a, b ,c", "B", True),
    ("IN", ["a", "b"], "c", False),
    ("IN", "a,b", MISSING, False),
    ("IN", [1, 2], "2", True),
    ("IN", "1,2", 2.0, True),
    ("IN", ["2024-01-01", "x"], "2024-01-01T00:00:00+00:00", True),
    ("IN", ["a"], ["a"], False),
    ("IN", "x,y", "x ", False),
    ("NOT_IN", "a,b", "c", True),
    ("NOT_IN", "a,b", "A", False),
    ("NOT_IN", "a,b", MISSING, True),
    ("NOT_IN", [1, 2], 3, True),
    ("MATCHES", "^ab+c$", "ABBC", True),
    ("MATCHES", "^ab+c$", "abd", False),
    ("MATCHES", "^ab+c$", MISSING, False),
    ("MATCHES", r"^\d+$", 123, True),
    ("MATCHES", "b", "abc", True),  # search, not match
    ("MATCHES", "x", ["x"], False),
]


@pytest.mark.parametrize(("operator", "value", "field_value", "expected"), OPERATOR_CASES)
def test_operator(operator: str, value: Any, field_value: Any, expected: bool) -> None:
    check(one_rule(operator, value), record_with(field_value), expected)


# (operator, rule value, record value, case_sensitive as sent, expected)
CASE_CASES = [
    ("EQUALS", "abc", "ABC", True, False),
    ("EQUALS", "abc", "ABC", "true", False),
    ("EQUALS", "abc", "ABC", "false", True),
    ("EQUALS", "abc", "abc", True, True),
    ("NOT_EQUALS", "abc", "ABC", True, True),
    ("CONTAINS", "vip", "VIP", True, False),
    ("CONTAINS", "b", ["B"], True, False),
    ("STARTS_WITH", "ab", "ABc", True, False),
    ("ENDS_WITH", "Bc", "aBc", True, True),
    ("MATCHES", "^abc$", "ABC", True, False),
    ("MATCHES", "^abc$", "ABC", False, True),
    ("IN", "a,b", "A", True, False),
    ("IN", "a,b", "A", "FALSE", True),
    ("GREATER_THAN", "B", "b", True, True),
    ("GREATER_THAN", "B", "b", False, False),
    ("EQUALS", "Straße", "STRASSE", False, True),
]


@pytest.mark.parametrize(("operator", "value", "field_value", "sensitive", "expected"), CASE_CASES)
def test_case_sensitivity(operator: str, value: Any, field_value: Any, sensitive: Any,
                          expected: bool) -> None:
    check(one_rule(operator, value, case_sensitive=sensitive), record_with(field_value), expected)


E_ACUTE, E_COMBINING = "\u00e9", "e\u0301"  # é precomposed, and e + combining acute accent

# (operator, rule value, record value, case_sensitive, expected): text is compared in NFC, and (unless
# case-sensitive) case-folded; MATCHES folds case exactly like EQUALS does.
TEXT_CASES = [
    ("MATCHES", "strasse", "Straße", False, True),  # the subject is case-folded like EQUALS'
    ("MATCHES", "^Straße$", "STRASSE", False, True),  # so are the pattern's literal characters
    ("MATCHES", "^straß+e$", "STRASSSSE", False, True),  # ß folds to the group (?:ss): + repeats "ss"
    ("MATCHES", "^straß+e$", "STRASSSE", False, False),
    ("MATCHES", "^stra(?:ß)+e$", "STRASSSSE", False, True),
    ("MATCHES", "^[ß]$", "ß", False, True),  # a class is left to re.IGNORECASE (searched in NFC too)
    ("MATCHES", "^(?P<ß>x)(?P=ß)$", "XX", False, True),  # group names are not folded
    ("MATCHES", r"^\D+$", "ABC", False, True),  # escapes are not folded (\D stays \D)
    ("MATCHES", "^STRASSE$", "Straße", False, True),
    ("MATCHES", "^Straße$", "STRASSE", True, False),
    ("MATCHES", "^Straße$", "Straße", True, True),
    ("MATCHES", f"^caf{E_ACUTE}$", f"CAF{E_COMBINING.upper()}", False, True),
    ("MATCHES", f"^caf{E_COMBINING}$", f"caf{E_ACUTE}", True, True),
    ("MATCHES", f"^caf{E_ACUTE}$", f"caf{E_COMBINING}", True, True),
    ("EQUALS", "Straße", "STRASSE", False, True),
    ("EQUALS", "Straße", "STRASSE", True, False),
    ("EQUALS", E_ACUTE, E_COMBINING, False, True),
    ("EQUALS", E_ACUTE, E_COMBINING, True, True),  # NFC when case-sensitive too
    ("EQUALS", E_COMBINING.upper(), E_ACUTE, False, True),
    ("EQUALS", "\u00c5", "\u212b", True, True),  # Å and the Angstrom sign are canonically equal
    ("EQUALS", "a;b", "a\u037eb", True, True),  # and ; and the Greek question mark
    ("EQUALS", "a;b", "A\u037eB", False, True),
    ("NOT_EQUALS", E_ACUTE, E_COMBINING, True, False),
    ("CONTAINS", f"caf{E_ACUTE}", f"Un CAF{E_COMBINING} noir", False, True),
    ("CONTAINS", f"caf{E_COMBINING}", f"un caf{E_ACUTE} noir", True, True),
    ("CONTAINS", "e", E_ACUTE, False, False),  # NFC: é is one character
    ("STARTS_WITH", E_ACUTE, f"{E_COMBINING}t{E_ACUTE}", True, True),
    ("ENDS_WITH", E_COMBINING, f"caf{E_ACUTE}", False, True),
    ("IN", [E_ACUTE, "x"], E_COMBINING.upper(), False, True),
    ("IN", f"{E_COMBINING},x", E_ACUTE, True, True),
    ("NOT_IN", [E_ACUTE], E_COMBINING, True, False),
    ("GREATER_THAN_OR_EQUALS", E_ACUTE, E_COMBINING, True, True),
    ("LESS_THAN_OR_EQUALS", "STRASSE", "straße", False, True),
]


@pytest.mark.parametrize(("operator", "value", "field_value", "sensitive", "expected"), TEXT_CASES)
def test_text_is_nfc_and_case_folded(operator: str, value: Any, field_value: Any, sensitive: bool,
                                     expected: bool) -> None:
    check(one_rule(operator, value, case_sensitive=sensitive), record_with(field_value), expected)


@pytest.mark.parametrize(("operator", "value", "field_value", "sensitive", "expected"), [
    ("EQUALS", "K", "\u212a", True, True),  # the Kelvin sign is canonically K
    ("EQUALS", "k", "\u212a", False, True),
    ("IN", ["x;y", "z"], "X\u037eY", False, True),
    ("NOT_IN", ["x;y"], "x\u037ey", True, False),
    ("NOT_EQUALS", "a`", "a\u1fef", True, False),
    ("EQUALS", "ab", "a\u037eb", False, False),
])
def test_the_three_characters_that_normalise_to_ascii(operator: str, value: Any, field_value: Any,
                                                       sensitive: bool, expected: bool) -> None:
    check(one_rule(operator, value, case_sensitive=sensitive), record_with(field_value), expected)


def test_what_lets_whole_text_equality_skip_the_ascii_check() -> None:
    """Over every code point: text whose casefold() is ASCII is its own caseless() form, and the only
    non-ASCII characters whose NFC or caseless() form is ASCII text other than their casefold() map
    to the characters of NON_ASCII_REACHES (the compiled fast path relies on both)."""
    reached: set[str] = set()
    for code in range(0x80, 0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        folded, key, nfc_form = ch.casefold(), caseless(ch), nfc(ch)
        if folded.isascii():
            assert key == folded, hex(code)
        if key.isascii() and key != folded:
            reached.update(key)
        if nfc_form.isascii():
            reached.update(nfc_form)
    assert reached == set(NON_ASCII_REACHES)


@pytest.mark.parametrize(("pattern", "folded"), [
    ("^Straße$", "^Stra(?:ss)e$"),
    ("[ß]", "[ß]"),
    ("[]ß]ß", "[]ß](?:ss)"),
    ("[^]ß]ß", "[^]ß](?:ss)"),
    (r"[\]ß]ß", r"[\]ß](?:ss)"),
    (r"\ßß", r"\ß(?:ss)"),
    (r"\N{LATIN SMALL LETTER SHARP S}ß", r"\N{LATIN SMALL LETTER SHARP S}(?:ss)"),
    ("(?P<ß>ß)(?P=ß)", "(?P<ß>(?:ss))(?P=ß)"),
    ("(?#ß)(?i:ß)(?<=ß)", "(?#ß)(?i:(?:ss))(?<=(?:ss))"),
    ("ﬁ+", "(?:fi)+"),
    ("İ", "(?:i\u0307)"),
    ("ǰ", "ǰ"),  # its folding is NFC ǰ again: one character
    ("cafe\u0301", "café"),
    ("unclosed [ß", "unclosed [ß"),
    ("ascii only", "ascii only"),
])
def test_fold_pattern(pattern: str, folded: str) -> None:
    """Only literal characters that fold to several change; escapes, classes and group headers do not."""
    assert fold_pattern(pattern) == folded


# Only ASCII digits make a number (or a date): "٣" is the text "٣", not 3.
@pytest.mark.parametrize(("operator", "value", "field_value", "expected"), [
    ("EQUALS", 3, "٣", False),
    ("EQUALS", "3", "٣", False),
    ("EQUALS", "٣", "٣", True),
    ("IN", [3, 4], "٣", False),
    ("EQUALS", 12, "１２", False),  # fullwidth digits
    ("EQUALS", "12", "１２", False),
    ("LESS_THAN", 10, "٣", False),  # compared as text: "٣" sorts after "10"
    ("EQUALS", "2024-01-01", "٢٠٢٤-٠١-٠١", False),
    ("EQUALS", 1.5, "١.٥", False),
    ("EQUALS", 3, " 3 ", True),
    ("EQUALS", 3, "\u00a03", False),  # only ASCII whitespace around a number
])
def test_numbers_are_ascii_digits(operator: str, value: Any, field_value: Any, expected: bool) -> None:
    check(one_rule(operator, value), record_with(field_value), expected)


@pytest.mark.parametrize(("field_value", "expected"), [
    (datetime(2024, 1, 1, 12, tzinfo=UTC), True),
    (datetime(2024, 1, 1, 12), True),
    (date(2024, 1, 2), True),
    (date(2023, 12, 31), False),
])
def test_python_dates_in_records_compare_as_dates(field_value: Any, expected: bool) -> None:
    check(one_rule("GREATER_THAN_OR_EQUALS", "2024-01-01T06:00:00Z"), record_with(field_value), expected)


NESTED = {"Addresses": [{"City": "Sydney"}, {"City": "Perth"}], "Meta": {"0": "zero", "tags": ["a"]},
          "a.b": "literal", "a": {"b": "nested"}, "Name": "n"}


@pytest.mark.parametrize(("field_name", "value", "expected"), [
    ("Addresses.0.City", "sydney", True),
    ("Addresses.1.City", "Perth", True),
    ("Addresses.1.City", "Sydney", False),
    ("Addresses.2.City", "Sydney", False),
    ("Addresses.x.City", "Sydney", False),
    ("Meta.0", "zero", True),
    ("Meta.tags.0", "a", True),
    ("a.b", "literal", True),
    ("a.b", "nested", False),
    ("Name.first", "n", False),
    ("Nope.deeper", "n", False),
])
def test_dotted_paths(field_name: str, value: str, expected: bool) -> None:
    groups = [{"group_condition": "AND", "rules": [
        {"field_name": field_name, "operator": "EQUALS", "value": value, "condition": "AND"}]}]
    check(groups, NESTED, expected)


@pytest.mark.parametrize(("field_name", "expected"), [
    ("Addresses.5.City", True), ("Meta.missing", True), ("Addresses.0.City", False)])
def test_a_missing_path_has_no_value(field_name: str, expected: bool) -> None:
    groups = [{"group_condition": "AND", "rules": [
        {"field_name": field_name, "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"}]}]
    check(groups, NESTED, expected)


@pytest.mark.parametrize(("record", "expected"), [
    ({"AccountNumber": "1QKGUL"}, True),
    ({"AccountNumber": "1qkgul", "ContactID": ""}, True),
    ({"AccountNumber": "1QKGUL", "ContactID": None}, True),
    ({"AccountNumber": "1QKGUL", "ContactID": "c-1"}, False),
    ({"AccountNumber": "OTHER"}, False),
    ({}, False),
])
def test_seed_000(record: dict[str, Any], expected: bool) -> None:
    check(SEED_000, record, expected)


# (g1 AND g2) OR g3; g1 = F1 == VALUE_1; g2 = F2 has a value OR F3 contains S; g3 = no F4 AND F5 == VALUE_2
@pytest.mark.parametrize(("record", "expected"), [
    ({"FIELD_NAME_1": "VALUE_1", "FIELD_NAME_2": "x", "FIELD_NAME_4": "y"}, True),  # g1, g2 via F2
    ({"FIELD_NAME_1": "value_1", "FIELD_NAME_3": "a string_value b", "FIELD_NAME_4": "y"}, True),  # via F3
    ({"FIELD_NAME_1": "VALUE_1", "FIELD_NAME_4": "y"}, False),  # g1 without g2, g3 fails on F4
    ({"FIELD_NAME_1": "VALUE_1"}, False),  # g1 only, g3 lacks F5
    ({"FIELD_NAME_2": "x", "FIELD_NAME_3": "STRING_VALUE", "FIELD_NAME_4": "y"}, False),  # g2 without g1
    ({"FIELD_NAME_5": "VALUE_2"}, True),  # g3 alone
    ({"FIELD_NAME_4": "", "FIELD_NAME_5": "value_2"}, True),  # g3: empty F4 has no value
    ({"FIELD_NAME_4": "z", "FIELD_NAME_5": "VALUE_2"}, False),
    ({"FIELD_NAME_1": "nope", "FIELD_NAME_2": "x", "FIELD_NAME_5": "VALUE_2", "FIELD_NAME_4": "z"}, False),
    ({}, False),
])
def test_seed_001(record: dict[str, Any], expected: bool) -> None:
    check(SEED_001, record, expected)


@pytest.mark.parametrize(("groups", "text"), [(SEED_000, SEED_000_TEXT), (SEED_001, SEED_001_TEXT)])
def test_seed_texts(groups: list[dict[str, Any]], text: str) -> None:
    assert parse_criteria(groups).text == text


def _eq(field: str, condition: str) -> dict[str, Any]:
    return {"field_name": field, "operator": "EQUALS", "value": "y", "condition": condition}


def _rules_shape(first: str, second: str) -> list[dict[str, Any]]:
    """a <first> b <second> c, inside one group."""
    return [{"group_condition": "OR", "rules": [_eq("A", first), _eq("B", second), _eq("C", "OR")]}]


def _groups_shape(first: str, second: str) -> list[dict[str, Any]]:
    """(a) <first> (b) <second> (c), one rule per group."""
    pairs = (("A", first), ("B", second), ("C", "AND"))
    return [{"group_condition": c, "rules": [_eq(f, "OR")]} for f, c in pairs]


BITS = [(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)]


@pytest.mark.parametrize("shape", [_rules_shape, _groups_shape], ids=["rules", "groups"])
@pytest.mark.parametrize(("a", "b", "c"), BITS)
@pytest.mark.parametrize(("first", "second"), [("AND", "OR"), ("OR", "AND")], ids=["a&b|c", "a|b&c"])
def test_and_binds_tighter_than_or(shape: Any, a: bool, b: bool, c: bool, first: str, second: str) -> None:
    expected = (a and b) or c if first == "AND" else a or (b and c)
    record = {name: "y" if bit else "n" for name, bit in zip("ABC", (a, b, c), strict=True)}
    check(shape(first, second), record, expected)


@pytest.mark.parametrize(("groups", "text"), [
    (_rules_shape("AND", "OR"), "(((A equals 'y') AND (B equals 'y')) OR (C equals 'y'))"),
    (_rules_shape("OR", "AND"), "((A equals 'y') OR ((B equals 'y') AND (C equals 'y')))"),
    (_rules_shape("OR", "OR"), "((A equals 'y') OR (B equals 'y') OR (C equals 'y'))"),
    (_rules_shape("AND", "AND"), "((A equals 'y') AND (B equals 'y') AND (C equals 'y'))"),
    (_groups_shape("AND", "OR"), "(((A equals 'y')) AND ((B equals 'y'))) OR ((C equals 'y'))"),
    (_groups_shape("OR", "AND"), "((A equals 'y')) OR (((B equals 'y')) AND ((C equals 'y')))"),
    (_groups_shape("AND", "AND"), "((A equals 'y')) AND ((B equals 'y')) AND ((C equals 'y'))"),
    (_groups_shape("OR", "OR"), "((A equals 'y')) OR ((B equals 'y')) OR ((C equals 'y'))"),
])
def test_text_brackets_every_mix(groups: list[dict[str, Any]], text: str) -> None:
    assert parse_criteria(groups).text == text


@pytest.mark.parametrize(("operator", "value", "extra", "phrase"), [
    ("EQUALS", "V", {}, "F equals 'V'"),
    ("NOT_EQUALS", 10, {}, "F does not equal '10'"),
    ("CONTAINS", "it's", {}, "F contains 'it\\'s'"),
    ("DOES_NOT_CONTAIN", "V", {}, "F does not contain 'V'"),
    ("STARTS_WITH", "V", {"case_sensitive": True}, "F starts with 'V', case-sensitive"),
    ("ENDS_WITH", "V", {}, "F ends with 'V'"),
    ("HAS_VALUE", MISSING, {"case_sensitive": True}, "F has a value"),
    ("DOES_NOT_HAVE_VALUE", MISSING, {}, "F has no value"),
    ("GREATER_THAN", 1.5, {}, "F is greater than '1.5'"),
    ("GREATER_THAN_OR_EQUALS", "2024-01-01", {}, "F is greater than or equal to '2024-01-01'"),
    ("LESS_THAN", True, {}, "F is less than 'true'"),
    ("LESS_THAN_OR_EQUALS", "9", {}, "F is less than or equal to '9'"),
    ("IN", "a, b", {}, "F is one of ('a', 'b')"),
    ("NOT_IN", ["a", 2], {}, "F is not one of ('a', '2')"),
    ("MATCHES", "^a/b$", {}, "F matches /^a\\/b$/"),
])
def test_phrases(operator: str, value: Any, extra: dict[str, Any], phrase: str) -> None:
    assert parse_criteria(one_rule(operator, value, **extra)).text == f"(({phrase}))"


@pytest.mark.parametrize(("groups", "enabled"), [
    (SEED_000, False), (SEED_000, "false"), (None, True), ([], True), (None, False)])
def test_without_criteria_every_record_matches(groups: Any, enabled: Any) -> None:
    criteria = parse_criteria(groups, enabled)
    assert criteria.text == "All records"
    assert criteria.compile()({}) is True and criteria.compile()({"AccountNumber": "x"}) is True


def test_disabled_criteria_keep_their_groups() -> None:
    criteria = parse_criteria(SEED_000, False)
    assert criteria.enabled is False and criteria.to_list() == parse_criteria(SEED_000).to_list()


@pytest.mark.parametrize(("rule", "expected"), [
    ({"operator": "equals"}, Rule("F", "EQUALS", "y", "AND", False)),
    ({"operator": " does not contain "}, Rule("F", "DOES_NOT_CONTAIN", "y", "AND", False)),
    ({"operator": "not-contains"}, Rule("F", "DOES_NOT_CONTAIN", "y", "AND", False)),
    ({"operator": "Greater_Than_Or_Equal"}, Rule("F", "GREATER_THAN_OR_EQUALS", "y", "AND", False)),
    ({"condition": "or"}, Rule("F", "EQUALS", "y", "OR", False)),
    ({"condition": ""}, Rule("F", "EQUALS", "y", "AND", False)),
    ({"condition": None}, Rule("F", "EQUALS", "y", "AND", False)),
    ({"case_sensitive": "TRUE"}, Rule("F", "EQUALS", "y", "AND", True)),
    ({"case_sensitive": 0}, Rule("F", "EQUALS", "y", "AND", False)),
    ({"field_name": "  F "}, Rule("F", "EQUALS", "y", "AND", False)),
    ({"operator": "HAS_VALUE", "value": "ignored"}, Rule("F", "HAS_VALUE", None, "AND", False)),
    ({"operator": "IN", "value": ["a", "b"]}, Rule("F", "IN", ("a", "b"), "AND", False)),
])
def test_lenient_inputs(rule: dict[str, Any], expected: Rule) -> None:
    raw = {"field_name": "F", "operator": "EQUALS", "value": "y", "condition": "AND", **rule}
    assert parse_criteria([{"group_condition": "and", "rules": [raw]}], "true") == Criteria(
        (Group((expected,), "AND"),), True)


R = "additional_criteria_details"


def _rule(**changes: Any) -> dict[str, Any]:
    rule = {"field_name": "F", "operator": "EQUALS", "value": "y", "condition": "AND", **changes}
    return {k: v for k, v in rule.items() if v is not MISSING}


def _group(*rules: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"group_condition": "AND", "rules": list(rules) or [_rule()], **changes}


@pytest.mark.parametrize(("groups", "field", "message"), [
    ({"rules": []}, R, "must be a list of groups"),
    ("x", R, "must be a list of groups"),
    (["x"], f"{R}.0", "must be an object"),
    ([_group(), _group(rules=[])], f"{R}.1.rules", "non-empty list of rules"),
    ([_group(rules=None)], f"{R}.0.rules", "non-empty list of rules"),
    ([_group(rules={"field_name": "F"})], f"{R}.0.rules", "non-empty list of rules"),
    ([_group(group_condition="XOR")], f"{R}.0.group_condition", "must be AND or OR"),
    ([_group(group_condition=1)], f"{R}.0.group_condition", "must be AND or OR"),
    ([_group(_rule(), "x")], f"{R}.0.rules.1", "must be an object"),
    ([_group(_rule(), _rule(operator="LIKE"))], f"{R}.0.rules.1.operator", "unknown operator 'LIKE'"),
    ([_group(_rule(operator=MISSING))], f"{R}.0.rules.0.operator", "unknown operator None"),
    ([_group(_rule(operator=""))], f"{R}.0.rules.0.operator", "unknown operator"),
    ([_group(), _group(_rule(field_name=MISSING))], f"{R}.1.rules.0.field_name", "is required"),
    ([_group(_rule(field_name="  "))], f"{R}.0.rules.0.field_name", "is required"),
    ([_group(_rule(field_name=5))], f"{R}.0.rules.0.field_name", "is required"),
    ([_group(), _group(), _group(_rule(value=MISSING))], f"{R}.2.rules.0.value", "required for operator EQ"),
    ([_group(_rule(value=None))], f"{R}.0.rules.0.value", "is required"),
    ([_group(_rule(value=""))], f"{R}.0.rules.0.value", "is required"),
    ([_group(_rule(value="   "))], f"{R}.0.rules.0.value", "is required"),
    ([_group(_rule(value=["a"]))], f"{R}.0.rules.0.value", "must be a text, number or boolean"),
    ([_group(_rule(value={"a": 1}))], f"{R}.0.rules.0.value", "must be a text, number or boolean"),
    ([_group(_rule(operator="IN", value=[]))], f"{R}.0.rules.0.value", "required for operator IN"),
    ([_group(_rule(operator="IN", value=" , ,"))], f"{R}.0.rules.0.value", "required for operator IN"),
    ([_group(_rule(operator="NOT_IN", value=["a", None]))], f"{R}.0.rules.0.value.1", "must be a text"),
    ([_group(_rule(operator="IN", value={"a": 1}))], f"{R}.0.rules.0.value", "boolean or list"),
    ([_group(_rule(operator="MATCHES", value="(unclosed"))], f"{R}.0.rules.0.value", "not a valid regular"),
    ([_group(_rule(operator="CONTAINS", value=MISSING))], f"{R}.0.rules.0.value", "required for operator"),
    ([_group(_rule(condition="NAND"))], f"{R}.0.rules.0.condition", "must be AND or OR"),
    ([_group(_rule(case_sensitive="maybe"))], f"{R}.0.rules.0.case_sensitive", "must be true or false"),
])
def test_validation_errors(groups: Any, field: str, message: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_criteria(groups)
    assert caught.value.field == field
    assert message in caught.value.message


def test_the_flag_is_validated() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_criteria(SEED_000, "perhaps")  # type: ignore[arg-type]
    assert caught.value.field == "additional_criteria"


def test_every_problem_is_reported_in_request_order() -> None:
    groups = [_group(_rule(field_name="", operator="NOPE")), _group(group_condition="X"),
              _group(_rule(operator="MATCHES", value="[", condition="?"))]
    with pytest.raises(DefinitionError) as caught:
        parse_criteria(groups)
    assert [e.field for e in caught.value.errors] == [
        f"{R}.0.rules.0.field_name", f"{R}.0.rules.0.operator", f"{R}.1.group_condition",
        f"{R}.2.rules.0.value", f"{R}.2.rules.0.condition"]
    assert caught.value.prefixed("integration").field == f"integration.{R}.0.rules.0.field_name"


def test_seed_000_stored_form() -> None:
    assert parse_criteria(SEED_000).to_list() == [{"group_condition": "AND", "rules": [
        {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
        {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"}]}]


@pytest.mark.parametrize("groups", [
    SEED_000, SEED_001, _rules_shape("AND", "OR"),
    one_rule("in", ["a", 1, True]), one_rule("IN", "a, b"), one_rule("MATCHES", "^x", case_sensitive="true"),
    [{"rules": [{"field_name": "Addresses.0.City", "operator": "not_equals", "value": 5}]}],
])
def test_to_list_round_trips(groups: list[dict[str, Any]]) -> None:
    criteria = parse_criteria(groups)
    assert parse_criteria(criteria.to_list()) == criteria
    assert parse_criteria(criteria.to_list()).text == criteria.text


def test_the_generated_source_holds_no_user_text() -> None:
    groups = one_rule("EQUALS", "'); import os; os.system('x') #")
    groups[0]["rules"][0]["field_name"] = "__import__('os')"
    predicate = parse_criteria(groups).compile()
    assert "import" not in (predicate.__doc__ or "") and "os" not in (predicate.__doc__ or "")
    assert predicate({"__import__('os')": "'); IMPORT os; os.system('x') #"}) is True


OPERATORS = ["EQUALS", "NOT_EQUALS", "CONTAINS", "DOES_NOT_CONTAIN", "STARTS_WITH", "ENDS_WITH", "HAS_VALUE",
             "DOES_NOT_HAVE_VALUE", "GREATER_THAN", "GREATER_THAN_OR_EQUALS", "LESS_THAN",
             "LESS_THAN_OR_EQUALS", "IN", "NOT_IN", "MATCHES"]
TEXTS = ["a", "A", "ab", "B", "10", "9.5", "2024-01-01", "2024-01-01T05:00:00Z", ""]
SCALARS = st.one_of(st.sampled_from(TEXTS), st.integers(-3, 12), st.sampled_from([9.5, 10.0, True, False]))
FIELD_VALUES = st.one_of(SCALARS, st.none(), st.lists(SCALARS, max_size=3))
RULES = st.builds(lambda f, op, v, c, cs: {"field_name": f, "operator": op, "value": v, "condition": c,
                                           "case_sensitive": cs},
                  st.sampled_from(["A", "B", "C.0"]), st.sampled_from(OPERATORS),
                  SCALARS.filter(lambda v: v != ""), st.sampled_from(["AND", "OR"]), st.booleans())
GROUPS = st.lists(st.builds(lambda rules, c: {"group_condition": c, "rules": rules},
                            st.lists(RULES, min_size=1, max_size=3), st.sampled_from(["AND", "OR"])),
                  min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(GROUPS, st.fixed_dictionaries({"A": FIELD_VALUES, "B": FIELD_VALUES, "C": st.lists(FIELD_VALUES)}))
def test_generated_code_agrees_with_the_reference(groups: list[dict[str, Any]],
                                                  record: dict[str, Any]) -> None:
    criteria = parse_criteria(groups)
    assert criteria.compile()(record) is reference_predicate(criteria.groups)(record)
