"""The run's lean writes: the plan is saved with the claim before anything is sent, a run that sends
nothing is one write, a slow fetch shows as running, and a slot finished elsewhere is never sent again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from models.db import get_engine
from models.run import Run
from tasks import execution
from tasks import run_record as claim
from tasks.run import execute
from tasks.run_record import Claim, Found
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]


@pytest.fixture()
def statements(database_url: str) -> Iterator[list[str]]:
    """The statements the runs' engine sends during the test (verb and table)."""
    seen: list[str] = []

    def on_execute(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        verb = words[0].upper()
        table = words[{"INSERT": 2, "UPDATE": 1}.get(verb, 0)] if verb in ("INSERT", "UPDATE") else ""
        seen.append(f"{verb} {table}".strip())

    engine = get_engine(None)
    event.listen(engine, "before_cursor_execute", on_execute)
    yield seen
    event.remove(engine, "before_cursor_execute", on_execute)


def test_the_plan_is_saved_with_the_claim_before_the_invoke(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch, statements: list[str]) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    seen_at_invoke: list[tuple[str, Any, int]] = []
    original = execution.invoke_batch

    def spy(*args: Any, **kwargs: Any) -> None:
        run = run_of(db, auto)
        seen_at_invoke.append((run.status, run.plan["batches"], run.attempts))
        original(*args, **kwargs)

    monkeypatch.setattr(execution, "invoke_batch", spy)
    statements.clear()
    assert execute(auto.uuid, slot().isoformat())["status"] == "succeeded"
    assert seen_at_invoke == [("running", [["a"]], 1)]
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "WITH")]
    # claim + plan, then the outcome with the watermark (on PostgreSQL one statement: WITH ... UPDATE), then
    # the automation's health (tasks/health.py)
    assert writes in (["INSERT runs", "UPDATE runs", "UPDATE automations", "UPDATE automations"],
                      ["INSERT runs", "WITH", "UPDATE automations"])


def test_a_run_that_sends_nothing_is_one_write(db: Session, server: IntegrationServer, fast: None,
                                               rclient: redis.Redis, statements: list[str]) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server, ignore_threshold=2)
    statements.clear()
    summary = execute(auto.uuid, slot().isoformat())
    assert (summary["status"], summary["attempts"], summary["records_matched"]) == ("below_threshold", 1, 1)
    # the run (one write), then the automation's health (tasks/health.py)
    assert [s for s in statements if s.split()[0] in ("INSERT", "UPDATE")] == ["INSERT runs",
                                                                               "UPDATE automations"]
    run = run_of(db, auto)
    assert run.started_at is not None and run.finished_at is not None and run.duration_ms is not None


def test_a_fetch_of_several_pages_shows_the_run_as_running(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(4)])  # pages of 3: two pages
    auto = definitions(db, server)
    seen: list[tuple[str, int]] = []
    original = Claim.next_page

    def spy(self: Claim) -> None:
        original(self)
        run = run_of(db, auto)
        seen.append((run.status, run.attempts))

    monkeypatch.setattr(Claim, "next_page", spy)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded" and summary["attempts"] == 1 and summary["records_sent"] == 4
    assert seen == [("running", 1)]


def test_a_fetch_retry_claims_the_run_and_counts_the_attempt(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    server.fail_next("objects", 4, kind="status", status=503)  # every try fails
    auto = definitions(db, server)
    summary = execute(auto.uuid, slot().isoformat())
    assert (summary["status"], summary["attempts"]) == ("failed", 4)
    run = run_of(db, auto)
    assert run.started_at is not None and run.finished_at is not None and "HTTP 503" in (run.error or "")


def test_a_slot_finished_between_the_read_and_the_claim_is_not_sent_again(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    first = execute(auto.uuid, slot().isoformat())
    real_look_up = claim.look_up

    def stale(automation_uuid: str, at: Any) -> Found:
        found = real_look_up(automation_uuid, at)
        return Found(found.context, None)  # as read just before another delivery recorded and finished it

    monkeypatch.setattr(claim, "look_up", stale)
    again = execute(auto.uuid, slot().isoformat())
    assert again["status"] == "succeeded" and again["run_uuid"] == first["run_uuid"]
    assert len(server.invocations()) == 1
    assert db.scalar(select(func.count()).select_from(Run).where(Run.automation_id == auto.id)) == 1
