"""Beat's liveness: the leader's tick recorded in its extend script, /health's `beat`, GET /health/beat."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import app
from models import keys
from models.liveness import beat_liveness
from models.settings import Settings, get_settings
from tests.support import processes
from worker.beat.leader import LeaderLock

STALE_S = 4.0


@pytest.fixture()
def client(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    c.delete(keys.BEAT_LEADER_LOCK, keys.BEAT_LAST_TICK)
    yield c
    c.delete(keys.BEAT_LEADER_LOCK, keys.BEAT_LAST_TICK)
    c.close()


@pytest.fixture()
def api(client: redis.Redis) -> Iterator[TestClient]:
    """The API with BEAT_STALE_S shortened (the settings dependency), no token needed for /health."""
    app.dependency_overrides[get_settings] = lambda: Settings(**{**get_settings().model_dump(),
                                                                 "beat_stale_s": STALE_S})
    with TestClient(app) as test_client:
        yield test_client
    app.dependency_overrides.clear()


def test_only_the_leaders_extend_records_the_tick(client: redis.Redis) -> None:
    a, b = LeaderLock(client, "a", 5), LeaderLock(client, "b", 5)
    assert a.acquire() and not b.acquire()
    assert beat_liveness(client, STALE_S).status == "absent"
    b.extend()  # a standby's extend records nothing
    assert client.get(keys.BEAT_LAST_TICK) is None
    before = time.time()
    assert a.extend()[0]
    at = float(client.get(keys.BEAT_LAST_TICK) or 0)
    assert before - 0.01 <= at <= time.time() + 0.01
    assert beat_liveness(client, STALE_S).status == "ok"
    assert beat_liveness(client, STALE_S, now=at + STALE_S + 0.5).status == "stale"


def test_health_reports_beat_and_stays_200(api: TestClient, client: redis.Redis) -> None:
    body = api.get("/health").json()
    assert api.get("/health").status_code == 200
    assert body["beat"] == {"status": "absent", "last_tick_age_s": None}
    assert api.get("/health/beat").status_code == 503
    client.set(keys.BEAT_LAST_TICK, f"{time.time() - STALE_S - 2:.3f}")
    response = api.get("/health")
    assert response.status_code == 200 and response.json()["beat"]["status"] == "stale"
    assert response.json()["beat"]["last_tick_age_s"] >= STALE_S + 2
    stale = api.get("/health/beat")
    assert stale.status_code == 503 and stale.json()["status"] == "stale"
    client.set(keys.BEAT_LAST_TICK, f"{time.time():.3f}")
    fresh = api.get("/health/beat")
    assert fresh.status_code == 200 and fresh.json()["status"] == "ok"
    assert fresh.json()["last_tick_age_s"] < 1


@pytest.mark.slow
def test_beat_killed_503_within_stale_then_200_after_a_standby_takes_over(
        api: TestClient, client: redis.Redis, tmp_path: object) -> None:
    env = processes.celery_env(BEAT_LOCK_TTL_S="2")
    started: list[subprocess.Popen[bytes]] = []
    try:
        first = processes.start_beat(env, "liveness-a")
        started.append(first)
        assert processes.wait_until(lambda: api.get("/health/beat").status_code == 200, 30), \
            processes.log_of(first)[-3000:]
        processes.kill(first)  # SIGKILL: its lock and its last tick are left behind
        killed = time.monotonic()
        assert processes.wait_until(lambda: api.get("/health/beat").status_code == 503, STALE_S + 2, 0.2)
        took = time.monotonic() - killed
        assert took <= STALE_S + 1.5, took
        assert api.get("/health").status_code == 200  # the API itself stays healthy
        standby = processes.start_beat(env, "liveness-b")
        started.append(standby)
        assert processes.wait_until(lambda: api.get("/health/beat").status_code == 200, 30), \
            processes.log_of(standby)[-3000:]
        assert "became leader" in processes.log_of(standby)
    finally:
        for proc in started:
            processes.stop(proc)
