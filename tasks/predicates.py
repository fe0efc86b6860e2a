"""Compiled criteria, cached by their content in the worker process.

Criteria are parsed and compiled once per distinct definition; every run reuses the predicate, so
evaluation is the only per-record cost. The key is the criteria themselves (canonical JSON), not the
automation: 10,000 automations made from one template share one entry, an edited definition gets its
own, and a worker's memory stops growing once it has seen each distinct definition.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from models.criteria import parse_criteria

Predicate = Callable[[Mapping[str, Any]], bool]
_MAX_ENTRIES = 4096
_cache: OrderedDict[str, Predicate] = OrderedDict()
_lock = threading.Lock()
_ALL_RECORDS = ""  # the key of criteria switched off: every record matches whatever is stored


def criteria_key(enabled: bool, criteria: list[Any]) -> str:
    """The cache key: canonical JSON of the criteria when they are on, one shared key when off."""
    if not enabled:
        return _ALL_RECORDS
    return json.dumps(criteria, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def predicate_for(enabled: bool, criteria: list[Any]) -> Predicate:
    """The compiled predicate of these criteria; invalid criteria raise DefinitionError (not cached)."""
    key = criteria_key(enabled, criteria)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    predicate = parse_criteria(criteria, enabled=enabled).compile()
    with _lock:
        _cache[key] = predicate
        while len(_cache) > _MAX_ENTRIES:
            _cache.popitem(last=False)
    return predicate


def cache_size() -> int:
    """How many predicates are cached (for tests and the soak)."""
    return len(_cache)


def clear_cache() -> None:
    """Forget every compiled predicate (tests)."""
    with _lock:
        _cache.clear()
