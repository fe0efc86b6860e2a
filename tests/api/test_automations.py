"""Automations: seed 000 create, seed 001 update, lenient reading, rejections, list, details, delete."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.base import utcnow
from tests.api import payloads
from tests.api.conftest import create_automation, create_connection, create_partner_function, row_counts
from tests.support.factories import make_partner_function

SEED_TEXT = "((AccountNumber equals '1QKGUL') AND (ContactID has no value))"


def _seed_connection(client: TestClient, db: Session) -> str:
    """A connection holding a partner function with the seed's perform_action UUID."""
    conn = create_connection(client)
    from models.connection import Connection

    row = db.scalars(select(Connection).where(Connection.uuid == conn["uuid"])).one()
    make_partner_function(db, row, uuid=payloads.SEED_PERFORM_ACTION)
    db.commit()
    return conn["uuid"]


def test_the_verbatim_seed_create_answers_the_seed_keys(client: TestClient, db: Session) -> None:
    uuid = _seed_connection(client, db)
    response = client.post(f"/api/v3/integration/{uuid}/automation", json=payloads.AUTOMATION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["integration_automation"]
    auto = body["integration_automation"]
    assert list(auto) == payloads.AUTOMATION_KEYS
    assert {k: v for k, v in auto.items() if k != "uuid"} == {
        "check_on": "8 hours", "check_on_minutes": "480", "additional_criteria": "true",
        "applies_to": "supplier", "applies_to_function": "new", "automation_type": "timerBased",
        "code": "test2", "custom_day": "thursday", "custom_day_time": "thursday 06:45:23",
        "custom_time": "06:45:23", "description": "checking3578", "direction": "IMPORT",
        "display_name": "Test auto 260", "name": "Test auto 260",
        "perform_function": payloads.SEED_PERFORM_ACTION, "provider": "QUICKBOOKS", "status": "ACTIVE",
        "trigger_condition_text": SEED_TEXT, "performActionText": "Run partner function PartnerRole",
        "checkOnText": "Every 8 hours from 06:45:23 UTC",
    }


def test_create_stores_the_lenient_values_and_the_next_run(client: TestClient, db: Session) -> None:
    uuid = _seed_connection(client, db)
    before = utcnow()
    client.post(f"/api/v3/integration/{uuid}/automation", json=payloads.AUTOMATION)
    row = db.scalars(select(Automation)).one()
    assert row.description_enabled is True and row.do_not_over_write_latest_data is True
    assert row.ignore_threshold == 1 and row.since_last_look_up is True and row.additional_criteria is True
    assert row.another_automation == "Automation four" and row.time_zone == "UTC"
    assert row.partner_function is not None and row.perform_action == payloads.SEED_PERFORM_ACTION
    assert row.next_run_at is not None and before < row.next_run_at <= before + timedelta(hours=8)
    assert (row.next_run_at.hour - 6) % 8 == 0
    assert (row.next_run_at.minute, row.next_run_at.second) == (45, 23)


def test_perform_action_by_name_is_stored_as_the_uuid(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"], name="Sync suppliers")
    auto = create_automation(client, conn["uuid"], "Sync suppliers")
    assert auto["perform_function"] == pf["uuid"]
    assert auto["performActionText"] == "Run partner function Sync suppliers"


@pytest.mark.parametrize("ref", ["49f4b6b2-c3a5-4f74-a044-8452ffc52eec", "No such function", "Twice"])
def test_perform_action_must_name_one_partner_function_of_the_connection(client: TestClient, db: Session,
                                                                          ref: str) -> None:
    conn = create_connection(client)
    create_partner_function(client, conn["uuid"], name="Twice")
    create_partner_function(client, conn["uuid"], name="Twice")
    other = create_connection(client, remote_instance_id="another-tenant")
    create_partner_function(client, other["uuid"], name="No such function")
    before = row_counts(db)
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation",
                           json=payloads.automation_payload(ref))
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["integration.automation_details.perform_action"]
    assert row_counts(db) == before


def test_computed_fields_are_never_taken_from_the_request(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    computed = {"check_on_minutes": "1", "checkOnText": "lies", "trigger_condition_text": "lies",
                "performActionText": "lies", "custom_day_time": "lies", "uuid": "lies", "status": "PAUSED"}
    auto = create_automation(client, conn["uuid"], pf["uuid"], **computed)
    assert auto["check_on_minutes"] == "480" and auto["checkOnText"] == "Every 8 hours from 06:45:23 UTC"
    assert auto["trigger_condition_text"] == SEED_TEXT and auto["custom_day_time"] == "thursday 06:45:23"
    assert auto["uuid"] != "lies" and auto["status"] == "ACTIVE"


def test_time_zone_jitter_and_real_booleans(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"], check_on="weekly",
                             time_zone="Europe/London", jitter_s=30, since_last_look_up=False,
                             ignore_threshold=5, additional_criteria=False)
    assert auto["checkOnText"] == "Every Thursday at 06:45:23 Europe/London"
    assert auto["check_on_minutes"] == "10080" and auto["trigger_condition_text"] == "All records"
    row = db.scalars(select(Automation)).one()
    assert (row.time_zone, row.jitter_s, row.since_last_look_up, row.ignore_threshold) == (
        "Europe/London", 30, False, 5)


BAD_DETAILS = [
    ({"check_on": "0 hours"}, "integration.automation_details.check_on"),
    ({"check_on": "8 fortnights"}, "integration.automation_details.check_on"),
    ({"check_on": "weekly", "custom_day": "funday"}, "integration.automation_details.custom_day"),
    ({"custom_time": "25:00"}, "integration.automation_details.custom_time"),
    ({"time_zone": "Mars/Olympus"}, "integration.automation_details.time_zone"),
    ({"ignore_threshold": "many"}, "integration.automation_details.ignore_threshold"),
    ({"ignore_threshold": "-1"}, "integration.automation_details.ignore_threshold"),
    ({"jitter_s": -5}, "integration.automation_details.jitter_s"),
    ({"since_last_look_up": "perhaps"}, "integration.automation_details.since_last_look_up"),
    ({"direction": "UP"}, "integration.automation_details.direction"),
    ({"applies_to_function": "sometimes"}, "integration.automation_details.applies_to_function"),
    ({"name": 42}, "integration.automation_details.name"),
    ({"check_on": "x" * 129}, "integration.automation_details.check_on"),
]


@pytest.mark.parametrize(("details", "field"), BAD_DETAILS)
def test_bad_details_are_422_naming_the_field(client: TestClient, db: Session, details: dict[str, object],
                                               field: str) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    before = row_counts(db)
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation",
                           json=payloads.automation_payload(pf["uuid"], **details))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert row_counts(db) == before


def test_bad_criteria_name_the_full_path(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    body = payloads.automation_payload(pf["uuid"])
    rules = body["integration"]["additional_criteria_details"][0]["rules"]
    rules[1]["operator"] = "IS_FISHY"
    rules.append({"field_name": "Name", "operator": "MATCHES", "value": "([unclosed", "condition": "AND"})
    before = row_counts(db)
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation", json=body)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [
        "integration.additional_criteria_details.0.rules.1.operator",
        "integration.additional_criteria_details.0.rules.2.value"]
    assert row_counts(db) == before


def test_every_problem_is_reported_at_once(client: TestClient) -> None:
    conn = create_connection(client)
    body = payloads.automation_payload("nothing", check_on="often")
    body["integration"]["additional_criteria_details"][0]["rules"][0]["operator"] = "?"
    fields = [e["field"] for e in client.post(f"/api/v3/integration/{conn['uuid']}/automation",
                                              json=body).json()["errors"]]
    assert fields == ["integration.automation_details.check_on",
                      "integration.additional_criteria_details.0.rules.0.operator",
                      "integration.automation_details.perform_action"]


def test_missing_required_fields(client: TestClient) -> None:
    conn = create_connection(client)
    body = payloads.automation_payload("x")
    for key in ("name", "code", "applies_to", "check_on", "perform_action"):
        del body["integration"]["automation_details"][key]
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation", json=body)
    assert response.status_code == 422
    required = ("name", "code", "applies_to", "check_on", "perform_action")
    assert sorted(e["field"] for e in response.json()["errors"]) == sorted(
        f"integration.automation_details.{k}" for k in required)


def test_duplicate_code_is_409(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    create_automation(client, conn["uuid"], pf["uuid"])
    before = row_counts(db)
    response = client.post(f"/api/v3/integration/{conn['uuid']}/automation",
                           json=payloads.automation_payload(pf["uuid"]))
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "integration.automation_details.code"
    assert row_counts(db) == before


def test_seed_001_update_answers_the_seed_keys(client: TestClient, db: Session) -> None:
    uuid = _seed_connection(client, db)
    auto = client.post(f"/api/v3/integration/{uuid}/automation", json=payloads.AUTOMATION).json()
    url = f"/api/v3/integration/{uuid}/automation/{auto['integration_automation']['uuid']}"
    response = client.patch(url, json=payloads.AUTOMATION_UPDATE)
    assert response.status_code == 200, response.text
    body = response.json()["integration_automation"]
    assert list(body) == payloads.AUTOMATION_KEYS
    assert body["check_on"] == "4 hours" and body["check_on_minutes"] == "240"
    assert body["checkOnText"] == "Every 4 hours from 01:30:00 UTC"
    assert body["trigger_condition_text"].endswith(
        "OR ((FIELD_NAME_4 has no value) AND (FIELD_NAME_5 equals 'VALUE_2'))")
    assert (body["direction"], body["applies_to"], body["code"]) == ("EXPORT", "customer", "AUTOMATION_CODE")
    row = db.scalars(select(Automation)).one()
    assert row.ignore_threshold == 3 and row.since_last_look_up is False
    assert (row.next_run_at.hour - 1) % 4 == 0 and row.next_run_at.minute == 30


def test_update_changes_only_what_is_sent_and_moves_next_run(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"])
    url = f"/api/v3/integration/{conn['uuid']}/automation/{auto['uuid']}"
    first_next = db.scalars(select(Automation.next_run_at)).one()
    db.rollback()
    body = client.patch(url, json={"integration": {"automation_details": {"description": "new"}}}).json()
    assert body["integration_automation"] == {**auto, "description": "new"}
    assert db.scalars(select(Automation.next_run_at)).one() == first_next
    db.rollback()
    body = client.patch(url, json={"integration": {"automation_details": {"check_on": "15 minutes",
                                                                          "custom_time": ""}}}).json()
    assert body["integration_automation"]["check_on_minutes"] == "15"
    moved = db.scalars(select(Automation.next_run_at)).one()
    assert moved != first_next and moved - datetime.now(UTC) <= timedelta(minutes=15)


def test_update_criteria_flag_alone(client: TestClient) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"])
    url = f"/api/v3/integration/{conn['uuid']}/automation/{auto['uuid']}"
    def details(**fields: object) -> dict[str, object]:
        return {"integration": {"automation_details": fields}}

    off = client.patch(url, json=details(additional_criteria="false")).json()
    assert off["integration_automation"]["trigger_condition_text"] == "All records"
    on = client.patch(url, json=details(additional_criteria=True)).json()
    assert on["integration_automation"]["trigger_condition_text"] == SEED_TEXT


def test_rejected_update_changes_nothing(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    auto = create_automation(client, conn["uuid"], pf["uuid"])
    create_automation(client, conn["uuid"], pf["uuid"], code="taken")
    url = f"/api/v3/integration/{conn['uuid']}/automation/{auto['uuid']}"
    before = client.get(url).json()
    bad = copy.deepcopy(payloads.AUTOMATION_UPDATE)
    bad["integration"]["automation_details"]["perform_action"] = pf["uuid"]
    bad["integration"]["automation_details"]["custom_time"] = "24:61"
    assert client.patch(url, json=bad).status_code == 422
    taken = {"integration": {"automation_details": {"code": "taken"}}}
    assert client.patch(url, json=taken).status_code == 409
    nameless = {"integration": {"automation_details": {"name": None}}}
    assert client.patch(url, json=nameless).status_code == 422
    assert client.get(url).json() == before


def test_list_details_and_delete(client: TestClient, db: Session) -> None:
    conn = create_connection(client)
    pf = create_partner_function(client, conn["uuid"])
    first = create_automation(client, conn["uuid"], pf["uuid"], code="a")
    second = create_automation(client, conn["uuid"], pf["uuid"], code="b", time_zone="Asia/Tokyo")
    base = f"/api/v3/integration/{conn['uuid']}/automation"
    listing = client.get(base).json()
    assert list(listing) == ["integration_automations", "pagination"]
    items = listing["integration_automations"]
    assert [a["uuid"] for a in items] == [first["uuid"], second["uuid"]]
    assert list(items[0])[:21] == payloads.AUTOMATION_KEYS
    assert {"time_zone", "next_run_at", "last_run_at", "status_comment"} <= set(items[0])
    assert items[1]["time_zone"] == "Asia/Tokyo" and items[1]["ignore_threshold"] == "1"
    details = client.get(f"{base}/{second['uuid']}").json()
    described = details["integration_automation"]
    described_only = ("recent_runs", "next_runs", "counts_24h")
    assert {k: v for k, v in described.items() if k not in described_only} == items[1]
    deleted = client.delete(f"{base}/{first['uuid']}")
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Automation has been deleted successfully"}
    assert client.get(f"{base}/{first['uuid']}").status_code == 404
    assert row_counts(db)["automations"] == 1


def test_automation_of_another_connection_is_404(client: TestClient) -> None:
    one, other = create_connection(client), create_connection(client, remote_instance_id="another-tenant")
    pf = create_partner_function(client, one["uuid"])
    auto = create_automation(client, one["uuid"], pf["uuid"])
    url = f"/api/v3/integration/{other['uuid']}/automation/{auto['uuid']}"
    for response in (client.get(url), client.patch(url, json=payloads.AUTOMATION_UPDATE), client.delete(url),
                     client.post(f"{url}/pause"), client.post(f"{url}/run"), client.get(f"{url}/runs")):
        assert response.status_code == 404
        assert response.json()["errors"][0]["field"] == "automation_uuid"
