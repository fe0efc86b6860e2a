"""Criteria are compiled when an automation is stored: what cannot compile is a 422 naming the field,
and what is stored always compiles for the run (no value poisons every later run)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from tasks import predicates
from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function, row_counts

HUGE = "1" * 5000  # beyond int()'s 4,300-digit limit
RULES = "integration.additional_criteria_details.0.rules"


def _body(pf_uuid: str, rule: dict[str, Any]) -> dict[str, Any]:
    body = payloads.automation_payload(pf_uuid)
    body["integration"]["additional_criteria_details"][0]["rules"].insert(1, rule)
    return body


def test_a_number_beyond_the_digit_limit_is_stored_and_compiles(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    rule = {"field_name": "Amount", "operator": "GREATER_THAN", "value": HUGE, "condition": "AND"}
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation", json=_body(pf["uuid"], rule))
    assert response.status_code == 200, response.text
    row = db.scalars(select(Automation)).one()
    predicates.clear_cache()
    predicate = predicates.predicate_for(row.additional_criteria, row.criteria)
    base = {"AccountNumber": "1QKGUL", "ContactID": ""}
    assert predicate({**base, "Amount": HUGE + "0"}) is True
    assert predicate({**base, "Amount": 10}) is False
    assert predicate({**base, "Amount": HUGE}) is False


@pytest.mark.parametrize(("rule", "message"), [
    ({"field_name": "Name", "operator": "MATCHES", "value": "a{4294967295}"}, "regular expression"),
    ({"field_name": "Name", "operator": "MATCHES", "value": "(" * 1000 + ")" * 1000}, "regular expression"),
])
def test_what_cannot_compile_is_422_naming_the_field(client: TestClient, db: Session, rule: dict[str, Any],
                                                     message: str) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    before = row_counts(db)
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation",
                           json=_body(pf["uuid"], {**rule, "condition": "AND"}))
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [f"{RULES}.1.value"]
    assert message in errors[0]["message"]
    assert row_counts(db) == before


def test_an_update_that_cannot_compile_is_422_and_changes_nothing(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"])
    url = f"/api/v3/integration/{conn['uuid']}/automation/{auto['uuid']}"
    before = client.get(url).json()
    groups: list[dict[str, Any]] = copy.deepcopy(payloads.automation_payload(pf["uuid"])["integration"][
        "additional_criteria_details"])
    groups[0]["rules"][0] = {"field_name": "N", "operator": "MATCHES", "value": "x{99999999999}"}
    response = client.patch(url, json={"integration": {"additional_criteria_details": groups}})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [f"{RULES}.0.value"]
    assert client.get(url).json() == before
