"""The command line against the session's real database and Redis: every command, good and bad input."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.automation import Automation
from models.connection import Connection
from models.partner_function import PartnerFunction
from models.run import Run
from models.settings import get_settings
from tasks.message import RUN_QUEUE, parse_slot
from worker.cli import main as cli

CONNECTION = {
    "provider": "QuickBooks", "remote_instance_id": "tenant-9876543210", "remote_instance_name": "QB Demo",
    "integration_client_id": "qbclientid123", "integration_client_secret": "qbclientsecret456",
    "integration_access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "token_type": "Bearer",
    "api_domain": "https://api.quickbooks.example", "supporting_fields": "{\"region\":\"US\"}",
}
PARTNER_FUNCTION = {"partner_function": {"name": "PartnerRole", "direction": "IMPORT",
                                         "object_name": "CustomerRecord", "event_name": "updateEvent"}}
AUTOMATION = {"integration": {
    "automation_details": {
        "name": "Test auto 260", "code": "test2", "applies_to": "supplier", "applies_to_function": "new",
        "check_on": "8 hours", "custom_day": "thursday", "custom_time": "06:45:23",
        "perform_action": "PartnerRole", "since_last_look_up": "true", "additional_criteria": "true",
    },
    "additional_criteria_details": [{"group_condition": "AND", "rules": [
        {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
        {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"}]}],
}}
BUNDLE = {"connection": CONNECTION, "partner_functions": [PARTNER_FUNCTION], "automations": [AUTOMATION],
          "configuration": {"sync": {"enabled": True}}}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """main(argv) in process: (exit status, stdout, stderr); argparse's own exits included.

    The root logger's handlers and level are restored afterwards (main configures logging).
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, data: Any) -> str:
    """A JSON file in tmp_path; its path as text."""
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def count(db: Session, model: type[Any]) -> int:
    """Rows of a model, read fresh."""
    db.rollback()
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture()
def imported(db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Automation]:
    """The seed bundle imported; its automation."""
    code, _, err = run_cli(capsys, "import", write(tmp_path, "seed.json", BUNDLE))
    assert code == 0, err
    yield db.scalars(select(Automation)).one()


COMMANDS = [[], ["migrate"], ["import"], ["automations"], ["automations", "list"], ["runs"], ["runs", "list"],
            ["trigger"], ["schedule"], ["schedule", "preview"], ["check"], ["run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_help_on_every_command(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run_cli(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: automation-worker")


def test_console_script_without_a_command_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "worker.cli.main"], capture_output=True,
    text=True, timeout=60)
    assert result.returncode == 2 and "the following arguments are required: COMMAND" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_reports_head(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "migrate")
    assert code == 0 and "(head)" in out


def test_import_a_bundle_then_again_changes_nothing(imported: Automation, db: Session, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert imported.code == "test2" and imported.partner_function is not None
    assert imported.connection.configuration is not None
    assert imported.connection.configuration.document == {"sync": {"enabled": True}}
    code, out, _ = run_cli(capsys, "import", write(tmp_path, "again.json", [BUNDLE]))
    assert code == 0 and out.count("exists") == 3 and "created" not in out
    assert (count(db, Connection), count(db, PartnerFunction), count(db, Automation)) == (1, 1, 1)


def test_import_bare_seed_payloads_from_several_files(db: Session, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, f"{i}.json", body) for i, body in enumerate((CONNECTION, PARTNER_FUNCTION,
                                                                          AUTOMATION))]
    code, out, err = run_cli(capsys, "import", *files)
    assert code == 0, err
    assert out.count("created") == 3
    automation = db.scalars(select(Automation)).one()
    assert automation.perform_action == db.scalars(select(PartnerFunction.uuid)).one()


def test_import_onto_an_existing_connection_and_update(imported: Automation, db: Session, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    changed = json.loads(json.dumps(AUTOMATION))
    changed["integration"]["automation_details"]["name"] = "Renamed"
    path = write(tmp_path, "auto.json", changed)
    code, out, _ = run_cli(capsys, "import", "--connection", imported.connection.uuid, path)
    assert code == 0 and "exists" in out
    code, out, _ = run_cli(capsys, "import", "--update", "--connection", imported.connection.uuid, path)
    assert code == 0 and "updated" in out
    db.expire_all()
    assert db.scalars(select(Automation.name)).one() == "Renamed"


def test_import_bad_input_names_the_file_and_field_and_writes_nothing(
        db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = json.loads(json.dumps(BUNDLE))
    bad["automations"][0]["integration"]["automation_details"]["check_on"] = "8 fortnights"
    path = write(tmp_path, "bad.json", bad)
    code, out, err = run_cli(capsys, "import", path)
    assert code == 2 and out == ""
    assert f"{path}: automations.0.integration.automation_details.check_on:" in err
    assert "Traceback" not in err
    assert (count(db, Connection), count(db, Automation)) == (0, 0)


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "is not valid JSON"),
    ("[]", "empty list"),
    ("[1]", "must be a JSON object"),
    ('{"hello": 1}', "is none of"),
    (json.dumps({"automations": [AUTOMATION]}), "no connection to put it on"),
    (json.dumps({"connection": {"remote_instance_id": "x"}}), "connection.provider"),
])
def test_import_rejects_malformed_files(db: Session, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        content: str, expected: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(content)
    code, _, err = run_cli(capsys, "import", str(path))
    assert code == 2 and expected in err, err


def test_import_missing_file_and_unknown_connection(db: Session, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "import", str(tmp_path / "nope.json"))
    assert code == 2 and "cannot be read" in err
    path = write(tmp_path, "a.json", AUTOMATION)
    code, _, err = run_cli(capsys, "import", "--connection", "00000000-0000-0000-0000-000000000000", path)
    assert code == 2 and "connection_uuid" in err


def test_automations_list(imported: Automation, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "automations", "list")
    assert code == 0 and "test2" in out and imported.uuid in out and out.startswith("UUID")
    code, out, _ = run_cli(capsys, "automations", "list", "--json", "--connection", imported.connection.uuid)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["code"] for r in rows] == ["test2"]
    code, out, _ = run_cli(capsys, "automations", "list", "--status", "paused")
    assert code == 0 and "test2" not in out
    code, _, err = run_cli(capsys, "automations", "list", "--connection", "not-a-uuid")
    assert code == 2 and "no integration connection not-a-uuid" in err


def test_trigger_and_runs_list(imported: Automation, db: Session, capsys: pytest.CaptureFixture[str],
                               redis_url: str) -> None:
    queue = redis.Redis.from_url(redis_url)
    queue.delete(RUN_QUEUE)
    code, out, _ = run_cli(capsys, "runs", "list", "test2")
    assert code == 0 and "no runs yet" in out
    code, out, err = run_cli(capsys, "trigger", "test2")
    assert code == 0, err
    run = db.scalars(select(Run)).one()
    assert (run.trigger, run.status) == ("manual", "queued") and run.uuid in out
    [message] = [json.loads(m) for m in queue.lrange(RUN_QUEUE, 0, -1)]  # the run message, on the real queue
    args = json.loads(base64.b64decode(message["body"]))[0]
    assert message["headers"]["task"] == "automations.run"
    assert args[0] == imported.uuid and parse_slot(args[1]) == parse_slot(run.scheduled_for.isoformat())
    queue.delete(RUN_QUEUE)
    code, out, _ = run_cli(capsys, "runs", "list", imported.uuid, "--json", "--limit", "5")
    assert code == 0 and json.loads(out)["uuid"] == run.uuid and json.loads(out)["status"] == "queued"


def test_trigger_with_redis_down_fails_and_records_it(imported: Automation, db: Session,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        code, _, err = run_cli(capsys, "trigger", imported.code)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert code == 1 and "could not be queued" in err
    assert db.scalars(select(Run.status)).one() == "failed"


@pytest.mark.parametrize("argv", [["runs", "list", "nope"], ["trigger", "nope"],
                                  ["trigger", "00000000-0000-0000-0000-000000000000"]])
def test_unknown_automation(db: Session, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "no automation with UUID or code" in err


def test_runs_list_bad_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "runs", "list", "x", "--limit", "0")
    assert code == 2 and "between 1 and 500" in err


def test_schedule_preview_needs_no_database(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        code, out, _ = run_cli(capsys, "schedule", "preview", "8 hours", "--day", "thursday",
                               "--time", "06:45:23", "--tz", "Europe/London", "-n", "3",
                               "--from", "2026-01-01T00:00:00Z")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert code == 0
    assert out.splitlines() == ["Every 8 hours from 06:45:23 Europe/London", "2026-01-01T06:45:23+00:00",
                                "2026-01-01T14:45:23+00:00", "2026-01-01T22:45:23+00:00"]


@pytest.mark.parametrize(("argv", "expected"), [
    (["8 fortnights"], "CHECK_ON:"), (["daily", "--time", "25:00"], "--time:"),
    (["weekly", "--day", "funday"], "--day:"), (["daily", "--tz", "Mars/Base"], "--tz:"),
    (["daily", "-n", "0"], "between 1 and 100"), (["daily", "--from", "yesterday"], "ISO 8601"),
])
def test_schedule_preview_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str],
                                    expected: str) -> None:
    code, out, err = run_cli(capsys, "schedule", "preview", *argv)
    assert code == 2 and expected in err and out == "" and "Traceback" not in err


def test_check_ok(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check")
    assert code == 0 and out.count(" ok ") == 3


def test_check_fails_when_redis_and_migrations_are_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    get_settings.cache_clear()
    try:
        code, out, _ = run_cli(capsys, "check")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert code == 1
    assert "migrations  FAILED" in out and "automation-worker migrate" in out
    assert "redis       FAILED" in out and "hunter2" not in out
