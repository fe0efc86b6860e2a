"""`automation-worker explain` against a loopback partner: fetched records, --records, --criteria, --limit,
a table with the failing rules named, nothing invoked or recorded, and a non-zero exit on every error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.run import Run
from tests.cli.test_cli import run_cli, write
from tests.support.integration_server import IntegrationServer, integration_server
from tests.support.run_helpers import definitions, fresh, record

CRITERIA = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
    {"field_name": "Addresses.0.City", "operator": "EQUALS", "value": "Sydney", "condition": "AND"}]}]


@pytest.fixture()
def server() -> Iterator[IntegrationServer]:
    """A fresh loopback partner per test."""
    with integration_server() as srv:
        yield srv


@pytest.fixture()
def auto(db: Session, server: IntegrationServer) -> Automation:
    """An automation (code auto-1) on a connection whose API is the loopback partner, with CRITERIA."""
    return definitions(db, server, code="explain-me", additional_criteria=True, criteria=CRITERIA,
                       applies_to_function="all")


def runs(db: Session) -> int:
    """Runs recorded, read fresh."""
    db.rollback()
    return int(db.scalar(select(func.count()).select_from(Run)) or 0)


def lines_of(out: str) -> dict[str, str]:
    """The table's record lines by their first cell (the record id as JSON)."""
    return {line.split()[0]: line for line in out.splitlines()[3:]}


def test_fetched_records_as_a_table_with_failing_rules_named(db: Session, server: IntegrationServer,
                                                             auto: Automation,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    server.set_records("supplier", [
        record("ok", 5, AccountNumber="1QKGUL", Addresses=[{"City": "Sydney"}]),
        record("far", 6, AccountNumber="1QKGUL", Addresses=[{"City": "Perth"}]),
        record("bare", 7)])
    watermark = auto.watermark_at
    code, out, err = run_cli(capsys, "explain", "explain-me")
    assert code == 0, err
    assert "criteria ((AccountNumber equals '1QKGUL') AND (Addresses.0.City equals 'Sydney'))" in out
    assert "3 fetched record(s) examined, 1 matched, ignore_threshold 1: would invoke the partner " \
           "function in 1 batch" in out
    rows = lines_of(out)
    assert rows['"ok"'].split()[1:] == ["yes", "-"]
    assert rows['"far"'].split()[1] == "no"
    assert 'g1.r2 Addresses.0.City EQUALS "Sydney" (actual "Perth")' in rows['"far"']
    bare = 'g1.r1 AccountNumber EQUALS "1QKGUL" (missing); g1.r2 Addresses.0.City EQUALS "Sydney" (missing)'
    assert bare in rows['"bare"']
    assert server.invocations() == [] and runs(db) == 0
    assert fresh(db, auto).watermark_at == watermark


def test_given_records_a_draft_and_a_limit(db: Session, server: IntegrationServer, auto: Automation,
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = write(tmp_path, "records.json", {"records": [
        {"id": 1, "AccountNumber": "1QKGUL", "Addresses": [{"City": "Sydney"}], "Country": "NZ"},
        {"id": 2, "AccountNumber": "1QKGUL", "Country": "AU"},
        {"id": 3, "Country": "AU"}]})
    draft = write(tmp_path, "draft.json", {"integration": {"additional_criteria_details": [
        {"group_condition": "AND", "rules": [
            {"field_name": "Country", "operator": "EQUALS", "value": "AU"}]}]}})
    code, out, err = run_cli(capsys, "explain", "explain-me", "--records", records, "--criteria", draft,
                             "--limit", "2")
    assert code == 0, err
    assert "draft criteria ((Country equals 'AU'))" in out
    assert out.splitlines()[2].split() == ["ID", "MATCHED", "STORED", "FAILING", "RULES"]
    rows = lines_of(out)
    assert set(rows) == {"1", "2"}  # --limit 2
    assert rows["1"].split()[1:3] == ["no", "yes"] and 'Country EQUALS "AU" (actual "NZ")' in rows["1"]
    assert rows["2"].split()[1:4] == ["yes", "no", "-"]
    assert server.state.fetches == [] and runs(db) == 0


def test_json_is_the_api_answer(server: IntegrationServer, auto: Automation, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    records = write(tmp_path, "records.json", [{"id": "x", "AccountNumber": "1qkgul",
                                                "Addresses": [{"City": "SYDNEY"}]}])
    code, out, _ = run_cli(capsys, "explain", auto.uuid, "--records", records, "--json")
    answer: dict[str, Any] = json.loads(out)["explain"]
    assert code == 0 and answer["source"] == "given" and answer["records"][0]["matched"] is True
    assert answer["records"][0]["groups"][0]["rules"][1]["actual"] == "SYDNEY"


@pytest.mark.parametrize(("argv", "message"), [
    (["--criteria", "draft"], "additional_criteria_details.0.rules.0.operator: unknown operator"),
    (["--records", "records"], "records.0: "),
    (["--records", "nowhere.json"], "--records: "),
    (["--limit", "0"], "must be between 1 and 1000"),
])
def test_bad_input_exits_2_naming_the_field(server: IntegrationServer, auto: Automation, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str], argv: list[str],
                                            message: str) -> None:
    files = {"draft": write(tmp_path, "d.json", [{"rules": [{"field_name": "A", "operator": "NEAR"}]}]),
             "records": write(tmp_path, "r.json", ["not a record"]), "nowhere.json": str(tmp_path / "none")}
    code, out, err = run_cli(capsys, "explain", "explain-me", *[files.get(a, a) for a in argv])
    assert code == 2 and message in err and out == ""
    assert server.state.fetches == []


def test_unknown_automation_and_a_failing_partner_exit_non_zero(db: Session, server: IntegrationServer,
                                                               auto: Automation,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "explain", "no-such-code")
    assert code == 2 and "no automation with UUID or code 'no-such-code'" in err
    server.fail_next("objects", kind="status", status=503)
    code, out, err = run_cli(capsys, "explain", "explain-me")
    assert code == 1 and out == ""
    assert "the SANDBOX integration API failed" in err and "HTTP 503" in err
    assert runs(db) == 0
