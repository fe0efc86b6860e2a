"""The run task end to end over HTTP (loopback integration API), real Redis and the real database.

Most tests call the task's body (`tasks.run.execute`) directly; test_run_worker.py sends it through
a real Celery worker.
"""

from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy.orm import Session

from tasks.run import execute
from tests.engine.run_helpers import T0, definitions, fresh, record, run_of, slot
from tests.integration_server import IntegrationServer

pytest_plugins = ["tests.engine.run_support"]

CRITERIA = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"},
    {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"}]}]


def test_partner_receives_exactly_the_matching_records(db: Session, server: IntegrationServer, fast: None,
                                                        rclient: redis.Redis) -> None:
    server.set_records("supplier", [
        record("a", 1, AccountNumber="1QKGUL"), record("b", 2, AccountNumber="1qkgul", ContactID=""),
        record("c", 3, AccountNumber="1QKGUL", ContactID="X"), record("d", 4, AccountNumber="OTHER"),
        record("e", 5, AccountNumber="1QKGUL"),
    ])
    auto = definitions(db, server, additional_criteria=True, criteria=CRITERIA)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded", summary
    assert [r["id"] for r in server.sent_records()] == ["a", "b", "e"]
    run = run_of(db, auto)
    assert (run.records_fetched, run.records_matched, run.records_sent, run.attempts) == (5, 3, 3, 1)
    assert run.started_at and run.finished_at and run.duration_ms is not None
    keys = [inv.key for inv in server.invocations()]
    assert keys == [f"{run.uuid}:0", f"{run.uuid}:1"]  # batches of 2
    body = server.invocations()[0].body
    assert body["run"] == {"uuid": run.uuid, "scheduled_for": run.scheduled_for.isoformat(),
                           "batch_index": 0, "batch_count": 2}
    assert body["automation"]["uuid"] == auto.uuid and body["do_not_over_write_latest_data"] is False
    assert "access_token" not in str(body) and "secret" not in str(body)
    assert fresh(db, auto).watermark_at == T0 + timedelta(minutes=5)
