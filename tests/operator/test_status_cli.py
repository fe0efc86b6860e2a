"""`automation-worker status`: beat's state, the queue, the workers that answer a ping (a real worker) and
the health counts, on one screen; --json; exit 1 while something is late, failing or beat is not ok."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy.orm import Session

from models import keys
from models.settings import get_settings
from tests.support import processes
from tests.support.beat_support import due_automation
from tests.support.factories import make_partner_function


def _status(*args: str) -> tuple[int, str]:
    """`automation-worker status` as its own process, with this test session's environment."""
    done = subprocess.run([sys.executable, "-c", "from worker.cli.main import main; raise SystemExit(main())",
                           "status", *args], env=processes.celery_env(), cwd=processes.ROOT,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_status_shows_beat_queue_workers_and_health(db: Session, redis_url: str) -> None:
    rc = redis.Redis.from_url(redis_url)
    rc.delete(keys.HEALTH_COUNTS, keys.RUN_QUEUE)
    now = datetime.now(UTC)
    auto = due_automation(db, now + timedelta(hours=1), check_on="1 hour")
    make_partner_function(db, auto.connection)
    db.commit()
    auto.partner_function_id = auto.connection.partner_functions[0].id
    auto.awaiting_slot = now - timedelta(seconds=get_settings().late_after_s + 60)
    db.commit()
    rc.set(keys.BEAT_LAST_TICK, f"{time.time():.3f}")
    rc.set(keys.BEAT_LEADER_LOCK, "host:beat-1", ex=30)
    rc.lpush(keys.RUN_QUEUE, "m1", "m2")  # two messages waiting: the worker below consumes another queue
    worker = processes._start(["-A", "worker", "worker", "-l", "INFO", "-n", "status-worker@%h", "-Q",
                               "status-test-queue", "-P", "solo", "--without-gossip", "--without-mingle"],
                              processes.celery_env(), "status-worker", None)
    try:
        assert processes.wait_for_log(worker, "ready", 30), processes.log_of(worker)[-2000:]
        # the worker answers pings once its control consumer is up, a moment after "ready"
        assert processes.wait_until(lambda: "status-worker@" in _status()[1], 30, 1.0)
        rc.set(keys.BEAT_LAST_TICK, f"{time.time():.3f}")  # as a live leader keeps it fresh
        code, out = _status()
        code_json, out_json = _status("--json")
    finally:
        processes.stop(worker)
        rc.delete(keys.BEAT_LAST_TICK, keys.BEAT_LEADER_LOCK, keys.RUN_QUEUE, keys.HEALTH_COUNTS)
        rc.close()
    assert code == 1 and code_json == 1  # one automation is late
    assert "beat      ok" in out and "leader host:beat-1" in out
    assert "status-worker@" in out and "late 1" in out and auto.code in out
    body = json.loads(out_json[out_json.index("{"):])
    assert body["beat"]["status"] == "ok" and body["beat"]["leader"] == "host:beat-1"
    assert body["health"]["late"] == 1 and body["late"][0]["uuid"] == auto.uuid
    assert any(w.startswith("status-worker@") for w in body["workers"])
    assert body["queue_length"] == 2 and "queue     2 run message(s) waiting" in out
