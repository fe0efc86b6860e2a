"""POST .../explain through the API against a loopback partner: fetched and given records, a draft beside
the stored criteria, every operator's actual and missing, nested paths, the threshold, and that nothing
is invoked, moved or recorded; bad input is a 422 naming the field, a failing partner a 502."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import keys
from models.automation import Automation
from models.run import Run
from models.schemas.explain import ExplainResponse
from tests.api.conftest import create_automation, create_connection, create_partner_function, row_counts
from tests.support.integration_server import IntegrationServer, integration_server

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WATERMARK = T0 - timedelta(days=1)
SECRETS = ("qbclientsecret456", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "qbrefreshtoken789",
           "Str0ngP@ssw0rd!")
NEGATIVE = {"NOT_EQUALS", "DOES_NOT_CONTAIN", "NOT_IN", "DOES_NOT_HAVE_VALUE"}
#: One rule per operator (field, operator, value, verdict on PRESENT).
EVERY_OPERATOR = [
    ("Name", "EQUALS", "acme ltd", True), ("Name", "NOT_EQUALS", "acme ltd", False),
    ("Name", "CONTAINS", "ACME", True), ("Name", "DOES_NOT_CONTAIN", "acme", False),
    ("Name", "STARTS_WITH", "acme", True), ("Name", "ENDS_WITH", "ltd", True),
    ("Email", "HAS_VALUE", None, True), ("Email", "DOES_NOT_HAVE_VALUE", None, False),
    ("Amount", "GREATER_THAN", 10, True), ("Amount", "GREATER_THAN_OR_EQUALS", "50", True),
    ("Amount", "LESS_THAN", 50, False), ("Amount", "LESS_THAN_OR_EQUALS", 50, True),
    ("Code", "IN", "X1, X2", True), ("Code", "NOT_IN", ["X1"], False), ("Name", "MATCHES", "^ac.e", True),
]
PRESENT = {"id": "p", "Name": "Acme Ltd", "Email": "a@b.example", "Amount": 50, "Code": "x1"}


def record(rid: str, created: int, updated: int | None = None, **fields: Any) -> dict[str, Any]:
    """A record created / updated some minutes after T0."""
    c, u = T0 + timedelta(minutes=created), T0 + timedelta(minutes=created if updated is None else updated)
    return {"id": rid, "created_at": c.isoformat(), "updated_at": u.isoformat(), **fields}


def rule(field: str, operator: str, value: Any = None, condition: str = "AND") -> dict[str, Any]:
    """One rule of a criteria body."""
    out: dict[str, Any] = {"field_name": field, "operator": operator, "condition": condition}
    return out if value is None else {**out, "value": value}


@pytest.fixture()
def server() -> Iterator[IntegrationServer]:
    """A fresh loopback partner per test."""
    with integration_server() as srv:
        yield srv


@pytest.fixture()
def auto(client: TestClient, db: Session, server: IntegrationServer) -> dict[str, Any]:
    """The seed automation (new suppliers, AccountNumber equals 1QKGUL and no ContactID) on a connection
    whose API is the loopback partner, its watermark a day before T0."""
    connection = create_connection(client, api_domain=server.url, account_server=server.url)
    pf = create_partner_function(client, connection["uuid"])
    automation = create_automation(client, connection["uuid"], pf["uuid"])
    row = db.scalars(select(Automation).where(Automation.uuid == automation["uuid"])).one()
    row.watermark_at = WATERMARK
    db.commit()
    url = f"/api/v3/integration/{connection['uuid']}/automation/{automation['uuid']}"
    return {"url": url, "explain": f"{url}/explain", "uuid": automation["uuid"], "id": row.id}


def watermark_and_runs(db: Session, automation_id: int) -> tuple[Any, ...]:
    """What explain must never change: the watermark and the run count."""
    db.expire_all()
    row = db.get(Automation, automation_id)
    assert row is not None
    runs = db.scalar(select(func.count()).select_from(Run).where(Run.automation_id == automation_id))
    return row.watermark_at, tuple(row.watermark_ids or []), row.watermark_version, runs


def test_fetched_records_as_the_next_run_sees_them(client: TestClient, db: Session, server: IntegrationServer,
                                                    auto: dict[str, Any]) -> None:
    server.set_records("supplier", [
        record("r1", 5, AccountNumber="1QKGUL"),
        record("r2", 6, AccountNumber="1QKGUL", ContactID="C-9"),
        record("old", -60 * 48, 7, AccountNumber="1QKGUL"),  # created before the watermark: not "new"
    ])
    before = watermark_and_runs(db, auto["id"])
    response = client.post(auto["explain"])
    assert response.status_code == 200, response.text
    explain = ExplainResponse.model_validate(response.json()).model_dump()["explain"]
    assert explain["source"] == "fetched"
    assert [r["id"] for r in explain["records"]] == ["r1", "r2"]
    assert [(r["matched"], r["stored_matched"]) for r in explain["records"]] == [(True, None), (False, None)]
    assert (explain["records_examined"], explain["records_matched"]) == (2, 1)
    assert (explain["ignore_threshold"], explain["would_invoke"], explain["batches"]) == (1, True, 1)
    text = "((AccountNumber equals '1QKGUL') AND (ContactID has no value))"
    assert explain["trigger_condition_text"] == text
    failing = explain["records"][1]["groups"][0]
    assert failing["matched"] is False
    assert failing["rules"][1] == {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE",
                                   "value": None, "actual": "C-9", "missing": False, "matched": False}
    assert explain["records"][0]["groups"][0]["rules"][1]["missing"] is True
    # fetched since the watermark, nothing invoked, moved or recorded
    assert server.state.fetches[0]["updated_since"] == [WATERMARK.isoformat()]
    assert server.invocations() == []
    assert watermark_and_runs(db, auto["id"]) == before


def test_limit_examines_the_oldest_changes_first(client: TestClient, server: IntegrationServer,
                                                auto: dict[str, Any]) -> None:
    server.set_records("supplier", [record(f"r{i}", 50 - i, AccountNumber="1QKGUL") for i in range(7)])
    explain = client.post(auto["explain"], json={"limit": "2"}).json()["explain"]
    assert [r["id"] for r in explain["records"]] == ["r6", "r5"]
    assert explain["records_examined"] == 2


def test_given_records_with_a_draft_beside_the_stored_criteria(client: TestClient, db: Session,
                                                               server: IntegrationServer,
                                                               auto: dict[str, Any]) -> None:
    draft = [{"group_condition": "AND", "rules": [rule("Country", "IN", ["AU", "NZ"])]}]
    records = [{"id": 1, "AccountNumber": "1QKGUL", "Country": "au"},
               {"id": 2, "AccountNumber": "OTHER", "Country": "NZ"},
               {"id": 3, "AccountNumber": "1QKGUL", "Country": "US"}]
    before = watermark_and_runs(db, auto["id"])
    body = {"records": records, "additional_criteria_details": draft}
    explain = client.post(auto["explain"], json=body).json()["explain"]
    assert explain["source"] == "given"
    assert explain["trigger_condition_text"] == "((Country is one of ('AU', 'NZ')))"
    assert [(r["id"], r["matched"], r["stored_matched"]) for r in explain["records"]] == [
        (1, True, True), (2, True, False), (3, False, True)]
    assert explain["records"][2]["groups"][0]["rules"][0]["actual"] == "US"
    assert server.state.fetches == [] and server.invocations() == []
    assert watermark_and_runs(db, auto["id"]) == before


def test_every_operator_shows_its_actual_value_and_missing(client: TestClient, auto: dict[str, Any]) -> None:
    rules = [rule(f, op, v, "OR") for f, op, v, _ in EVERY_OPERATOR]
    body = {"records": [PRESENT, {"id": "m"}], "additional_criteria_details": [
        {"group_condition": "AND", "rules": rules}]}
    response = client.post(auto["explain"], json=body)
    assert response.status_code == 200, response.text
    present, missing = (r["groups"][0]["rules"] for r in response.json()["explain"]["records"])
    for (field, op, value, verdict), seen, absent in zip(EVERY_OPERATOR, present, missing, strict=True):
        assert (seen["operator"], seen["value"]) == (op, value), seen
        assert (seen["actual"], seen["missing"], seen["matched"]) == (PRESENT[field], False, verdict), seen
        assert (absent["actual"], absent["missing"]) == (None, True), absent
        assert absent["matched"] is (op in NEGATIVE), absent


def test_nested_paths(client: TestClient, auto: dict[str, Any]) -> None:
    draft = [{"group_condition": "AND", "rules": [rule("Addresses.0.City", "EQUALS", "Sydney")]}]
    records = [{"id": "a", "Addresses": [{"City": "sydney"}]}, {"id": "b", "Addresses": []},
               {"id": "c", "Addresses.0.City": "Perth"}, {"id": "d", "Addresses": [{"City": None}]}]
    explain = client.post(auto["explain"], json={"records": records,
                                                 "additional_criteria_details": draft}).json()["explain"]
    seen = [(r["groups"][0]["rules"][0]["actual"], r["groups"][0]["rules"][0]["missing"], r["matched"])
            for r in explain["records"]]
    assert seen == [("sydney", False, True), (None, True, False), ("Perth", False, False),
                    (None, False, False)]


@pytest.mark.parametrize(("matching", "would_invoke"), [(2, True), (1, False)])
def test_would_invoke_at_and_below_the_threshold(client: TestClient, auto: dict[str, Any], matching: int,
                                                 would_invoke: bool) -> None:
    patch = client.patch(auto["url"], json={"integration": {"automation_details": {"ignore_threshold": 2}}})
    assert patch.status_code == 200, patch.text
    records = [{"id": i, "AccountNumber": "1QKGUL" if i < matching else "X"} for i in range(3)]
    explain = client.post(auto["explain"], json={"records": records}).json()["explain"]
    assert (explain["records_matched"], explain["ignore_threshold"]) == (matching, 2)
    assert explain["would_invoke"] is would_invoke
    assert explain["batches"] == 1


def test_a_paused_automation_would_invoke_nothing(client: TestClient, auto: dict[str, Any]) -> None:
    assert client.post(f"{auto['url']}/pause", json={"comment": "audit"}).status_code == 200
    explain = client.post(auto["explain"], json={"records": [{"id": 1, "AccountNumber": "1QKGUL"}]}).json()
    assert explain["explain"]["records_matched"] == 1
    assert explain["explain"]["would_invoke"] is False
    assert explain["explain"]["skip_reason"] == "automation is paused: audit"


@pytest.mark.parametrize(("body", "field"), [
    ({"additional_criteria_details": [{"rules": [rule("A", "LOOKS_LIKE", "x")]}]},
     "additional_criteria_details.0.rules.0.operator"),
    ({"additional_criteria_details": [{"rules": [rule("A", "MATCHES", "(")]}]},
     "additional_criteria_details.0.rules.0.value"),
    ({"additional_criteria_details": [{"rules": [rule("A", "EQUALS")]}]},
     "additional_criteria_details.0.rules.0.value"),
    ({"additional_criteria_details": [{"group_condition": "XOR", "rules": [rule("A", "HAS_VALUE")]}]},
     "additional_criteria_details.0.group_condition"),
    ({"additional_criteria_details": [{"rules": [rule("A\u0000", "HAS_VALUE")]}]},
     "additional_criteria_details.0.rules.0.field_name"),
    ({"additional_criteria_details": "x"}, "additional_criteria_details"),
    ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "many"}, "limit"),
    ({"records": [{"id": 1}, "x"]}, "records.1"), ({"records": {"id": 1}}, "records"),
])
def test_bad_input_is_a_422_naming_the_field(client: TestClient, db: Session, server: IntegrationServer,
                                             auto: dict[str, Any], body: dict[str, Any], field: str) -> None:
    server.set_records("supplier", [record("r1", 5, AccountNumber="1QKGUL")])
    before = row_counts(db)
    response = client.post(auto["explain"], json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert server.state.fetches == [] and row_counts(db) == before


def test_unknown_automation_is_a_404(client: TestClient, auto: dict[str, Any]) -> None:
    url = auto["explain"].replace(auto["uuid"], "00000000-0000-4000-8000-000000000000")
    response = client.post(url, json={"records": []})
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "automation_uuid"


def test_a_failing_partner_is_a_502_naming_it_and_nothing_is_written(client: TestClient, db: Session,
                                                                     server: IntegrationServer,
                                                                     auto: dict[str, Any]) -> None:
    server.set_records("supplier", [record("r1", 5, AccountNumber="1QKGUL")])
    server.fail_next("objects", kind="status", status=500)
    before, rows = watermark_and_runs(db, auto["id"]), row_counts(db)
    response = client.post(auto["explain"])
    assert response.status_code == 502, response.text
    error = response.json()["errors"][0]
    assert error["field"] == "integration_api"
    assert "QUICKBOOKS integration API" in error["message"] and "HTTP 500" in error["message"]
    assert len(server.state.fetches) == 0  # one try: the planned failure, no retry behind it
    assert watermark_and_runs(db, auto["id"]) == before and row_counts(db) == rows
    assert client.post(auto["explain"]).status_code == 200  # the next explain fetches again


def test_no_credential_is_echoed_and_the_log_has_no_record_contents(
        client: TestClient, server: IntegrationServer, auto: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    server.set_records("supplier", [record("r1", 5, AccountNumber="1QKGUL", Secretish="VALUE-XYZ")])
    with caplog.at_level(logging.INFO):
        response = client.post(auto["explain"])
    assert response.status_code == 200
    assert not any(secret in response.text for secret in SECRETS)
    lines = [r.getMessage() for r in caplog.records if r.name == "tasks.explain"]
    assert len(lines) == 1 and auto["uuid"] in lines[0] and "1 fetched record(s) examined" in lines[0]
    assert not any("VALUE-XYZ" in r.getMessage() or "1QKGUL" in r.getMessage() for r in caplog.records)


def test_no_body_and_nothing_to_fetch(client: TestClient, server: IntegrationServer,
                                                  auto: dict[str, Any]) -> None:
    response = client.post(auto["explain"], json=None)
    assert response.status_code == 200, response.text
    assert response.json()["explain"]["records"] == []
    assert response.json()["explain"]["would_invoke"] is False


def test_a_partners_nan_is_shown_as_text(client: TestClient, server: IntegrationServer,
                                        auto: dict[str, Any]) -> None:
    server.set_records("supplier", [record("n", 5, AccountNumber=float("nan"))])
    response = client.post(auto["explain"])
    assert response.status_code == 200, response.text
    seen = response.json()["explain"]["records"][0]["groups"][0]["rules"][0]
    assert (seen["actual"], seen["missing"], seen["matched"]) == ("nan", False, False)


def test_explain_takes_permits_from_the_connections_budget(client: TestClient, db: Session,
                                                           server: IntegrationServer, auto: dict[str, Any],
                                                           redis_url: str) -> None:
    server.set_records("supplier", [record("r1", 5, AccountNumber="1QKGUL")])
    connection_uuid = auto["url"].split("/")[4]
    minute = redis.Redis.from_url(redis_url).llen(f"{keys.PREFIX}budget:{connection_uuid}:minute")
    assert client.post(auto["explain"]).status_code == 200
    after = redis.Redis.from_url(redis_url).llen(f"{keys.PREFIX}budget:{connection_uuid}:minute")
    assert after == minute + 1  # one page, one permit

    server.fail_next("objects", kind="status", status=429, retry_after="3600")
    rows = row_counts(db)
    response = client.post(auto["explain"])
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["field"] == "budget"
    assert 3500 <= int(response.headers["Retry-After"]) <= 3600
    assert row_counts(db) == rows and server.invocations() == []
