"""GET /metrics: the token unless METRICS_PUBLIC, the text parses with prometheus_client's parser, and the
figures agree with the runs two real worker processes made, one of them restarted midway."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.main import app
from models import keys
from models.run import FINISHED, Run
from models.settings import get_settings
from tasks.enqueue import enqueue_run
from tasks.metrics import EXECUTED, HISTOGRAMS
from tests.api.conftest import AUTH
from tests.faults.support import fault_env
from tests.support import processes
from tests.support.factories import make_automation, make_connection, make_partner_function
from tests.support.integration_server import IntegrationServer, integration_server
from tests.support.run_helpers import definitions, record

NAMES = ("runs_total", "run_duration_seconds", "run_drift_seconds", "automations", "due_backlog",
         "beat_last_tick_timestamp_seconds", "partner_requests_total", "budget_wait_seconds", "runs_deferred")


def clear_metrics(client: redis.Redis) -> None:
    stale = list(client.scan_iter(keys.PREFIX + "metrics:*"))
    if stale:
        client.delete(*stale)


@pytest.fixture()
def rc(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    clear_metrics(client)
    client.delete(keys.RUN_QUEUE)
    yield client
    clear_metrics(client)
    client.close()


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of /metrics by name and labels, parsed by prometheus_client's own parser."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("automation_worker_")
        for sample in family.samples:
            assert "uuid" not in sample.labels
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_need_the_token_unless_public(db: Session, rc: redis.Redis,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(app) as anonymous:
        refused = anonymous.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        monkeypatch.setattr(get_settings(), "metrics_public", True)
        assert anonymous.get("/metrics").status_code == 200
    rc.set(keys.BEAT_LAST_TICK, "1700000000.5")
    try:
        with TestClient(app, headers=AUTH) as client:
            samples, text = scrape(client), client.get("/metrics").text
    finally:
        rc.delete(keys.BEAT_LAST_TICK)
    assert samples["automation_worker_beat_last_tick_timestamp_seconds"][()] == 1700000000.5
    for name in NAMES:  # every family is declared, even before its first sample
        assert f"# TYPE automation_worker_{name} " in text, name


def _wait_finished(db: Session, n: int, procs: list[subprocess.Popen[bytes]]) -> None:
    def done() -> int:
        db.expire_all()
        return len(db.scalars(select(Run.id).where(Run.status.in_(sorted(FINISHED)))).all())

    assert processes.wait_until(lambda: done() >= n, 90, 0.2), "\n".join(
        processes.log_of(p)[-2000:] for p in procs)


@pytest.mark.slow
def test_figures_agree_with_the_runs_of_two_workers_one_restarted(db: Session, rc: redis.Redis) -> None:
    with integration_server() as server:
        _run_and_check(db, rc, server)


def _run_and_check(db: Session, rc: redis.Redis, server: IntegrationServer) -> None:
    server.set_records("supplier", [record(i, i) for i in range(3)])
    server.state.invoke_delay_s = 0.3  # runs overlap, so both workers take some
    good = definitions(db, server)
    dead = make_connection(db, provider="XERO")  # api_domain 127.0.0.1:9: nothing listens, every call fails
    bad = make_automation(db, dead, make_partner_function(db, dead), code="bad", name="Bad")
    db.commit()
    env = fault_env(RETRY_ATTEMPTS="2")
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    procs = [processes.start_worker(env, f"metrics-{i}", 2) for i in range(2)]
    try:
        for i in range(4):
            enqueue_run(good.uuid, slot + timedelta(minutes=i), label=good.code)
            enqueue_run(bad.uuid, slot + timedelta(minutes=i), label=bad.code)
        _wait_finished(db, 8, procs)
        processes.stop(procs[0])  # a restarted worker: a new process, the counts go on
        procs[0] = processes.start_worker(env, "metrics-0b", 2)
        for i in range(4, 7):
            enqueue_run(good.uuid, slot + timedelta(minutes=i), label=good.code)
        _wait_finished(db, 11, procs)
        ran = [p for p in procs if "run end" in processes.log_of(p)]
    finally:
        for proc in procs:
            processes.stop(proc)
    assert len(ran) >= 1
    db.expire_all()
    runs = list(db.scalars(select(Run)))
    with TestClient(app, headers=AUTH) as client:
        samples = scrape(client)
    by_label = Counter((r.status, r.trigger) for r in runs)
    assert {(dict(k)["status"], dict(k)["trigger"]): v for k, v in
            samples["automation_worker_runs_total"].items()} == dict(by_label)
    assert sum(by_label.values()) == 11 and by_label[("failed", "schedule")] >= 1
    executed = sum(n for (status, _), n in by_label.items() if status in EXECUTED)
    for name in ("run_duration_seconds", "run_drift_seconds"):
        assert samples[f"automation_worker_{name}_count"][()] == executed
        buckets = samples[f"automation_worker_{name}_bucket"]
        assert buckets[(("le", "+Inf"),)] == executed and len(buckets) == len(HISTOGRAMS[name]) + 1
    drift_sum = sum((r.started_at - r.scheduled_for).total_seconds() for r in runs if r.status in EXECUTED)
    assert samples["automation_worker_run_drift_seconds_sum"][()] == pytest.approx(drift_sum, rel=0.01)
    partner_samples = samples["automation_worker_partner_requests_total"]
    partner = {tuple(v for _, v in k): n for k, n in partner_samples.items()}
    assert partner[("ok", "SANDBOX")] == server.state.calls_total  # every call the partner answered
    assert partner[("error", "XERO")] == sum(r.attempts for r in runs if r.automation_id == bad.id)
    health = {dict(k)["health"]: v for k, v in samples["automation_worker_automations"].items()}
    assert (health["ok"], health["failing"]) == (1, 1)
    # one budget-wait observation per delivery that reached the partner's budget (executed runs)
    assert samples["automation_worker_budget_wait_seconds_count"][()] >= executed
