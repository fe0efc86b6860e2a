"""Compiled criteria, cached per (automation, definition version) in the worker process.

Criteria are parsed and compiled once per definition; every run of an unchanged automation reuses the
predicate, so evaluation is the only per-record cost.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from models.criteria import parse_criteria

Predicate = Callable[[Mapping[str, Any]], bool]
_MAX_ENTRIES = 4096
_cache: OrderedDict[tuple[str, datetime, bool], Predicate] = OrderedDict()
_lock = threading.Lock()


def predicate_for(
    automation_uuid: str, updated_at: datetime, enabled: bool, criteria: list[Any]
) -> Predicate:
    """The automation's compiled predicate; a changed definition (new updated_at) compiles anew."""
    key = (automation_uuid, updated_at, enabled)
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
    """How many predicates are cached (for tests)."""
    return len(_cache)
