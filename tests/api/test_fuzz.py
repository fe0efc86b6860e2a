"""Property-based: over a thousand generated bad or odd requests, never a 5xx, never a partial write.

Bodies are the seed payloads with parts replaced, deleted or added (odd strings, wrong types, NaN,
huge numbers, NUL, lone surrogates, nesting) or random JSON, sent as raw JSON text so that even what
httpx would refuse to encode reaches the server.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function

EXAMPLES = 1050
ODD_STRINGS = [
    "", " ", "\x00", "a\x00b", "\ud800", "25:00", "24:60:60", "funday", "0 hours", "8 fortnights", "-1",
    "1.5", "1e400", "true", "FALSE", "null", "x" * 300, "💥", "'; DROP TABLE automations; --", "* * * * * *",
    "0 0 31 2 *", "customDayTime", "monthly", "weekly", "Mars/Olympus", "Europe/London", "NaN", "IS_FISHY",
    "MATCHES", "([unclosed", "IMPORT", "export", "new", "PartnerRole", "49f4b6b2-c3a5-4f74-a044-8452ffc52eec",
]
KEYS = ["name", "code", "check_on", "custom_day", "custom_time", "time_zone", "perform_action", "rules",
        "operator", "value", "condition", "group_condition", "partner_function", "integration", "provider",
        "automation_details", "additional_criteria_details", "jitter_s", "ignore_threshold", "comment"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.sampled_from(ODD_STRINGS),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8),
                                                               inner, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every location in a JSON document, the root included."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


def _mutate(body: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    """Replace, delete or add at `path`; the root can only be replaced."""
    if not path:
        return value
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    if action == "delete":
        del parent[key]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{key}_extra"] = value
    else:
        parent[key] = value
    return body


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """The base payload with one to three parts changed."""
    body = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(_paths(body))))
        body = _mutate(body, path, draw(st.sampled_from(["replace", "delete", "add"])), draw(JSON))
    return body


TABLES = ("integration_connections", "partner_functions", "automations", "runs", "integration_configurations")
FINGERPRINT = text("SELECT " + ", ".join(
    f"(SELECT count(*) FROM {t}), (SELECT max(updated_at) FROM {t})" for t in TABLES))


def _fingerprint(db: Session) -> tuple[Any, ...]:
    """Row counts and newest update stamp of every table, in one query: any write changes it."""
    db.rollback()
    return tuple(db.execute(FINGERPRINT).one())


def test_odd_requests_never_5xx_and_never_write_partially(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"])
    base = f"/api/v3/integration/{conn['uuid']}"
    targets = [
        ("POST", "/api/v3/integration", payloads.CONNECTION),
        ("POST", f"{base}/partner-function/", payloads.PARTNER_FUNCTION),
        ("PATCH", f"{base}/partner-function/{pf['uuid']}", payloads.PARTNER_FUNCTION_UPDATE),
        ("POST", f"{base}/automation", payloads.automation_payload("PartnerRole", code="fuzz")),
        ("PATCH", f"{base}/automation/{auto['uuid']}", payloads.automation_payload(pf["uuid"])),
        ("PATCH", f"{base}/configuration", payloads.CONFIGURATION),
        ("POST", f"{base}/automation/{auto['uuid']}/pause", {"comment": "maintenance"}),
    ]
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        method, path, seed = data.draw(st.sampled_from(targets))
        body = data.draw(st.one_of(mutated(seed), JSON) if seed is not None else JSON)
        before = _fingerprint(db)
        response = client.request(method, path, content=json.dumps(body).encode(),
                                  headers={"Content-Type": "application/json"})
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400:
            assert list(response.json()) == ["errors"] and response.json()["errors"]
            assert _fingerprint(db) == before

    check()
    assert sum(seen.values()) >= 1000
    assert seen.get(422, 0) > 200 and seen.get(200, 0) > 20, seen
