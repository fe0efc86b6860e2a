"""An automation's health: stored by a run's end, derived (paused, disabled, late) when read; the SQL that
counts and filters agrees with the rule applied to each row; the overview endpoint and the list filter."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import redis
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.main import app
from models import health_query, keys
from models.automation import PAUSED, Automation
from models.health import STATES, Facts, health_of, off_now, state_clause
from models.run import Run
from tasks.context import skip_reason
from tasks.run import execute
from tests.api.conftest import AUTH
from tests.support.factories import make_automation, make_connection, make_partner_function
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, fresh, record, slot

pytest_plugins = ["tests.support.run_support"]
LATE_S = 120.0


def test_a_failed_run_shows_failing_and_a_success_clears_it(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    assert fresh(db, auto).health_state == "never_run"
    server.fail_next("invoke", 10, kind="status", status=400)
    assert execute(auto.uuid, slot(1).isoformat())["status"] == "failed"
    failed = fresh(db, auto)
    assert (failed.health_state, failed.consecutive_failures) == ("failing", 1)
    assert failed.health_reason and failed.last_success_at is None
    since = failed.health_since
    server.fail_next("invoke", 10, kind="status", status=400)
    assert execute(auto.uuid, slot(2).isoformat())["status"] == "failed"
    again = fresh(db, auto)
    assert (again.consecutive_failures, again.health_since) == (2, since)  # still failing since the first
    server.state.failures.clear()
    server.set_records("supplier", [record("b", 2)])
    assert execute(auto.uuid, slot(3).isoformat())["status"] == "succeeded"
    ok = fresh(db, auto)
    assert (ok.health_state, ok.consecutive_failures, ok.health_reason) == ("ok", 0, None)
    assert ok.last_success_at is not None and ok.health_since is not None and ok.health_since > since


def test_a_runs_end_clears_the_awaited_slot_up_to_its_own(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    auto = definitions(db, server)
    auto.awaiting_slot, auto.last_run_at = slot(5), slot(10)  # beat dispatched 5 and then 10
    db.commit()
    execute(auto.uuid, slot(5).isoformat())
    assert fresh(db, auto).awaiting_slot == slot(10)  # the later dispatched slot is awaited now
    execute(auto.uuid, slot(10).isoformat())
    assert fresh(db, auto).awaiting_slot is None


def _zoo(db: Session, now: datetime) -> dict[str, list[Automation]]:
    """Automations in every state, some in two at once (precedence decides)."""
    conn, off = make_connection(db), make_connection(db, status="INACTIVE")
    pf, pf_off = make_partner_function(db, conn), make_partner_function(db, conn, enabled=False)
    pf_of_off = make_partner_function(db, off)
    old, fresh_slot = now - timedelta(seconds=LATE_S + 30), now - timedelta(seconds=10)
    n = iter(range(1000))

    def auto(c: object = conn, p: object = pf, **fields: object) -> Automation:
        i = next(n)
        fields.setdefault("next_run_at", now + timedelta(hours=1))
        return make_automation(db, c, p, code=f"h-{i}", name=f"H {i}", **fields)  # type: ignore[arg-type]

    zoo = {
        "ok": [auto(health_state="ok", health_since=now - timedelta(days=1)),
               auto(health_state="ok", awaiting_slot=fresh_slot)],
        "never_run": [auto()],
        "failing": [auto(health_state="failing", health_since=now - timedelta(hours=2),
                         consecutive_failures=3),
                    auto(health_state="failing", health_since=now - timedelta(hours=5))],
        "paused": [auto(status=PAUSED, next_run_at=None, awaiting_slot=old)],
        "disabled": [auto(c=off, p=pf_of_off, awaiting_slot=old), auto(p=pf_off, health_state="failing"),
                     auto(p=None)],
        "late": [auto(awaiting_slot=old, health_state="failing"),
                 auto(next_run_at=old - timedelta(minutes=5)),
                 auto(awaiting_slot=old - timedelta(minutes=1))],
    }
    running = auto(awaiting_slot=old, health_state="ok")  # overdue, but a run is going: not late
    db.add(Run(automation_id=running.id, scheduled_for=old, status="running", trigger="schedule"))
    zoo["ok"].append(running)
    db.commit()
    return zoo


def test_sql_counts_and_filters_agree_with_the_rule_per_row(db: Session) -> None:
    now = datetime.now(UTC)
    zoo = _zoo(db, now)
    expected = {state: len(autos) for state, autos in zoo.items()}
    counts = health_query.counts(db, now, LATE_S)
    assert counts == {state: expected.get(state, 0) for state in STATES}
    for state in STATES:
        ids = set(db.scalars(select(Automation.id).where(state_clause(state, now, LATE_S, off_now(db)))))
        assert ids == {a.id for a in zoo.get(state, [])}, state
    per_row: Counter[str] = Counter()
    for a in db.scalars(select(Automation)):
        reason = skip_reason(a, a.connection, a.partner_function) if a.status == "ACTIVE" else None
        running = a.id == zoo["ok"][-1].id
        per_row[health_of(a, Facts(reason, None, running), now, LATE_S).state] += 1
    assert dict(per_row) == expected
    late = health_query.late(db, now, LATE_S)
    assert [p.uuid for p in late] == [zoo["late"][i].uuid for i in (1, 2, 0)]  # oldest overdue slot first
    # the heads of the two kinds (dispatched and awaited, undispatched), each read by its index, merged
    assert [p.uuid for p in health_query.late(db, now, LATE_S, limit=2)] == [p.uuid for p in late[:2]]
    assert [p.uuid for p in health_query.late(db, now, LATE_S, limit=1)] == [late[0].uuid]
    assert late[0].health.reason and "beat has not dispatched" in late[0].health.reason
    assert "no run has started" in (late[1].health.reason or "")
    assert [p.uuid for p in health_query.failing(db, now, LATE_S)] == [zoo["failing"][1].uuid,
                                                                      zoo["failing"][0].uuid]


def test_overview_endpoint_details_and_list_filter(db: Session, redis_url: str) -> None:
    now = datetime.now(UTC)
    zoo = _zoo(db, now)
    rc = redis.Redis.from_url(redis_url)
    rc.delete(keys.HEALTH_COUNTS)  # the counts an earlier test's request left shared
    with TestClient(app, headers=AUTH) as client:
        body = client.get("/api/v3/automations/health").json()
        assert body["counts"]["late"] == 3 and body["counts"]["failing"] == 2
        assert [p["uuid"] for p in body["late"]][0] == zoo["late"][1].uuid
        assert set(body["late"][0]["health"]) == {"state", "since", "reason", "last_success_at",
                                                  "consecutive_failures"}
        assert client.get("/api/v3/automations/health", headers={"Authorization": ""}).status_code == 401
        auto = zoo["failing"][0]
        base = f"/api/v3/integration/{auto.connection.uuid}/automation"
        health = client.get(f"{base}/{auto.uuid}").json()["integration_automation"]["health"]
        assert health["state"] == "failing" and health["consecutive_failures"] == 3
        listed = client.get(base, params={"health": "late,failing", "limit": 100}).json()
        states = Counter(a["health"]["state"] for a in listed["integration_automations"])
        assert states == {"late": 3, "failing": 2}
        bad = client.get(base, params={"health": "late,sleepy"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "health"
        # the stored states' counts are shared a while; late ones are counted afresh at every request
        fresh_late = zoo["failing"][0]
        fresh_late.awaiting_slot = now - timedelta(hours=1)
        db.commit()
        again = client.get("/api/v3/automations/health").json()["counts"]
        assert (again["late"], again["failing"]) == (4, 1)
    rc.delete(keys.HEALTH_COUNTS)
    rc.close()
