"""The worker's compiled-criteria cache: keyed by the criteria's content, not by the automation."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta, tzinfo

import pytest

from models.errors import DefinitionError
from tasks import predicates
from tests.models.test_criteria import SEED_000

MATCH = {"AccountNumber": "1QKGUL", "ContactID": ""}
OTHER = {"AccountNumber": "ZZZ", "ContactID": ""}


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Each test starts with no predicate compiled."""
    predicates.clear_cache()
    yield
    predicates.clear_cache()


def test_identical_definitions_share_one_entry() -> None:
    """A thousand automations made from one template (fresh copies, keys in another order) compile once."""
    reordered = [{"rules": [dict(reversed(list(r.items()))) for r in g["rules"]],
                  "group_condition": g["group_condition"]} for g in SEED_000]
    first = predicates.predicate_for(True, copy.deepcopy(SEED_000))
    for i in range(1000):
        same = predicates.predicate_for(True, copy.deepcopy(SEED_000 if i % 2 else reordered))
        assert same is first
    assert predicates.cache_size() == 1
    assert first(MATCH) and not first(OTHER)


def test_an_edited_definition_compiles_anew() -> None:
    """Another value is another entry with its own result; the old one still answers as before."""
    edited = copy.deepcopy(SEED_000)
    edited[0]["rules"][0]["value"] = "ZZZ"
    old, new = predicates.predicate_for(True, SEED_000), predicates.predicate_for(True, edited)
    assert predicates.cache_size() == 2
    assert old(MATCH) and not old(OTHER)
    assert new(OTHER) and not new(MATCH)


def test_criteria_switched_off_share_the_all_records_entry() -> None:
    """Whatever is stored, criteria that are off match every record, through one shared entry."""
    off = predicates.predicate_for(False, SEED_000)
    assert predicates.predicate_for(False, []) is off
    assert off(OTHER) and off({})
    assert predicates.cache_size() == 1


def test_invalid_criteria_raise_and_are_not_cached() -> None:
    """A corrupted definition fails every run with DefinitionError; nothing is kept for it."""
    with pytest.raises(DefinitionError):
        predicates.predicate_for(True, [{"group_condition": "AND", "rules": [{"operator": "NOPE"}]}])
    assert predicates.cache_size() == 0


def test_the_cache_is_bounded() -> None:
    """More distinct definitions than the bound keep the newest ones only."""
    limit = predicates._MAX_ENTRIES
    for i in range(limit + 10):
        criteria = copy.deepcopy(SEED_000)
        criteria[0]["rules"][0]["value"] = f"v{i}"
        predicates.predicate_for(True, criteria)
    assert predicates.cache_size() == limit


class _BrokenOffset(tzinfo):
    """A time zone whose offset is out of range: a datetime carrying it cannot be compared or printed."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=30)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "SECRET-ZONE"


UNCOMPARABLE = datetime(2024, 5, 1, tzinfo=_BrokenOffset())
AMOUNT_OR_NAME = [
    {"group_condition": "OR", "rules": [
        {"field_name": "Name", "operator": "EQUALS", "value": "n", "condition": "AND"},
        {"field_name": "When", "operator": "GREATER_THAN", "value": "2024-01-01", "condition": "AND"}]},
    {"group_condition": "AND", "rules": [
        {"field_name": "Name", "operator": "EQUALS", "value": "x", "condition": "AND"}]},
]


def test_the_tolerant_predicate_answers_like_the_compiled_one() -> None:
    """On ordinary records it is the compiled predicate, and notes nothing."""
    tolerant = predicates.tolerant_predicate_for(True, SEED_000)
    assert tolerant(MATCH) is True and tolerant(OTHER) is False and tolerant({}) is False
    assert (tolerant.uncomparable, tolerant.example) == (0, None)
    assert predicates.cache_size() == 1


def test_an_uncomparable_value_does_not_match_its_rule_and_is_noted() -> None:
    """The rule that cannot compare the value counts as not matching; the others still decide."""
    with pytest.raises(ValueError):  # the plain compiled predicate raises on such a value
        predicates.predicate_for(True, AMOUNT_OR_NAME)({"Name": "n", "When": UNCOMPARABLE})
    tolerant = predicates.tolerant_predicate_for(True, AMOUNT_OR_NAME)
    assert tolerant({"Name": "n", "When": UNCOMPARABLE}) is False  # (n AND ?) OR x
    assert tolerant({"Name": "x", "When": UNCOMPARABLE}) is True  # second group
    assert tolerant({"Name": "n", "When": "2024-02-01"}) is True
    assert tolerant.uncomparable == 1  # the second record never evaluates the rule (short-circuit)
    assert tolerant.example == "rule 2 of group 1 (When GREATER_THAN): value could not be compared"
    tolerant({"Name": "n", "When": UNCOMPARABLE})
    assert tolerant.uncomparable == 2
    assert "SECRET" not in (tolerant.example or "") and "2024-05" not in (tolerant.example or "")


def test_a_negative_operator_does_not_match_an_uncomparable_value() -> None:
    """NOT_EQUALS is not "true because EQUALS failed": the value could not be compared at all."""
    criteria = [{"group_condition": "AND", "rules": [
        {"field_name": "When", "operator": "NOT_EQUALS", "value": "2024-01-01", "condition": "AND"}]}]
    tolerant = predicates.tolerant_predicate_for(True, criteria)
    assert tolerant({"When": UNCOMPARABLE}) is False and tolerant({"When": "2025-01-01"}) is True
    assert tolerant({}) is True
    assert tolerant.uncomparable == 1


def test_each_run_counts_for_itself() -> None:
    """Tolerant predicates share the cached compiled criteria but not their counts."""
    first = predicates.tolerant_predicate_for(True, AMOUNT_OR_NAME)
    second = predicates.tolerant_predicate_for(True, copy.deepcopy(AMOUNT_OR_NAME))
    first({"Name": "n", "When": UNCOMPARABLE})
    assert (first.uncomparable, second.uncomparable, second.example) == (1, 0, None)
    assert predicates.cache_size() == 1


def test_criteria_switched_off_match_every_record_tolerantly() -> None:
    tolerant = predicates.tolerant_predicate_for(False, AMOUNT_OR_NAME)
    assert tolerant({"When": UNCOMPARABLE}) is True and tolerant.uncomparable == 0


def test_a_record_that_is_not_an_object_matches_nothing() -> None:
    """Even a record that is not a JSON object does not raise: every rule counts as uncomparable."""
    tolerant = predicates.tolerant_predicate_for(True, SEED_000)
    assert tolerant(["not", "a", "record"]) is False  # type: ignore[arg-type]
    assert tolerant.uncomparable == 1 and tolerant.example is not None
