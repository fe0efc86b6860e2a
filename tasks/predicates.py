"""Compiled criteria, cached by their content in the worker process.

Criteria are parsed and compiled once per distinct definition; every run reuses the predicate, so
evaluation is the only per-record cost. The key is the criteria themselves (canonical JSON), not the
automation: 10,000 automations made from one template share one entry, an edited definition gets its
own, and a worker's memory stops growing once it has seen each distinct definition.

A run filters its records with a TolerantPredicate: the cached compiled predicate, and only when that
raises on a record (a value no rule can compare: not JSON, say) a rule-by-rule evaluation in which the
failing rule counts as not matching; the run reads how many values that happened to and one example.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.criteria import Group, Predicate, parse_criteria
from models.criteria_compile import careful_predicate

_MAX_ENTRIES = 4096
_lock = threading.Lock()
_ALL_RECORDS = ""  # the key of criteria switched off: every record matches whatever is stored


@dataclass(frozen=True)
class _Entry:
    """One compiled definition: the fast predicate and the groups it was compiled from."""

    predicate: Predicate
    groups: tuple[Group, ...]


_cache: OrderedDict[str, _Entry] = OrderedDict()


class TolerantPredicate:
    """A run's predicate: the compiled one, and on a record it raises for, the rules one by one.

    A rule that cannot compare the record's value counts as not matching (a negative operator too);
    `uncomparable` counts such values over the run and `example` describes the first by its place
    ("rule 2 of group 1 (Amount GREATER_THAN): value could not be compared"), never by the value.
    Built per run (the counts are the run's); the compiled criteria are shared through the cache.
    """

    __slots__ = ("_careful", "_fast", "_groups", "example", "uncomparable")

    def __init__(self, fast: Predicate, groups: tuple[Group, ...]) -> None:
        self._fast = fast
        self._groups = groups
        self._careful: Predicate | None = None
        self.uncomparable = 0
        self.example: str | None = None

    def __call__(self, record: Mapping[str, Any]) -> bool:
        try:
            return self._fast(record)
        except Exception:  # noqa: BLE001 - the careful evaluation decides, and notes the failing rule
            careful = self._careful
            if careful is None:
                careful = self._careful = careful_predicate(self._groups, self._note)
            return careful(record)

    def _note(self, where: str) -> None:
        """Count one value a rule could not compare; keep the first description."""
        self.uncomparable += 1
        if self.example is None:
            self.example = f"{where}: value could not be compared"


def criteria_key(enabled: bool, criteria: list[Any]) -> str:
    """The cache key: canonical JSON of the criteria when they are on, one shared key when off."""
    if not enabled:
        return _ALL_RECORDS
    return json.dumps(criteria, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _entry_for(enabled: bool, criteria: list[Any]) -> _Entry:
    """The cached compilation of these criteria; invalid criteria raise DefinitionError (not cached)."""
    key = criteria_key(enabled, criteria)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    parsed = parse_criteria(criteria, enabled=enabled)
    entry = _Entry(parsed.compile(), parsed.groups if parsed.enabled else ())
    with _lock:
        _cache[key] = entry
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return entry


def predicate_for(enabled: bool, criteria: list[Any]) -> Predicate:
    """The compiled predicate of these criteria; invalid criteria raise DefinitionError (not cached)."""
    return _entry_for(enabled, criteria).predicate


def tolerant_predicate_for(enabled: bool, criteria: list[Any]) -> TolerantPredicate:
    """A fresh TolerantPredicate for one run over the cached compiled criteria."""
    entry = _entry_for(enabled, criteria)
    return TolerantPredicate(entry.predicate, entry.groups)


def cache_size() -> int:
    """How many predicates are cached (for tests and the soak)."""
    return len(_cache)


def clear_cache() -> None:
    """Forget every compiled predicate (tests)."""
    with _lock:
        _cache.clear()
