"""The worker's compiled-criteria cache: keyed by the criteria's content, not by the automation."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from models.errors import DefinitionError
from tasks import predicates
from tests.test_criteria import SEED_000

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
