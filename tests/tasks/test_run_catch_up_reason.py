"""A `catch_up` run keeps beat's coalescing reason ("catch-up after downtime: N slot(s) ...") when it
finishes: its outcome's reason follows it instead of replacing it."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy.orm import Session

from models.run import Run
from tasks.run import execute
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]

COALESCED = f"catch-up after downtime: 3 slot(s) due from {slot(-2).isoformat()} coalesced into this run"


def _queued_catch_up(db: Session, automation_id: int) -> None:
    """The run beat's dispatch inserts for coalesced slots (worker/beat/dispatch.py)."""
    db.add(Run(uuid="c0ffee00-0000-4000-8000-000000000001", automation_id=automation_id,
               scheduled_for=slot(), trigger="catch_up", status="queued", reason=COALESCED))
    db.commit()


@pytest.mark.parametrize(("threshold", "fail", "status", "outcome"), [
    (0, False, "succeeded", None),
    (5, False, "below_threshold", "1 matched, fewer than ignore_threshold 5"),
    (0, True, "failed", "the integration API refused the request"),
])
def test_a_catch_up_run_keeps_its_coalescing_reason(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        threshold: int, fail: bool, status: str, outcome: str | None) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server, ignore_threshold=threshold)
    _queued_catch_up(db, auto.id)
    if fail:
        server.fail_next("invoke", 1, kind="status", status=400)
    summary = execute(auto.uuid, slot().isoformat())
    expected = f"{COALESCED}; {outcome}" if outcome else COALESCED
    assert (summary["status"], summary["reason"]) == (status, expected)
    db.expire_all()
    assert run_of(db, auto).reason == expected


def test_a_skipped_catch_up_run_keeps_its_coalescing_reason(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    auto = definitions(db, server)
    auto.status, auto.status_comment = "PAUSED", "holiday"
    db.commit()
    _queued_catch_up(db, auto.id)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["reason"] == f"{COALESCED}; automation is paused: holiday"
