"""Beat's batched publish writes exactly what send_task writes, and a real worker runs both alike."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import redis

from models import keys
from tests.support import beat_probe, processes
from worker.beat.publish import PipelinePublisher, SendTaskPublisher, make_publisher
from worker.celery_app import make_app

SLOT = "2030-01-01T10:00:00+00:00"
PROBE_APP = "tests.support.beat_probe"
VOLATILE = ("id", "root_id", "correlation_id", "delivery_tag")


def _queued(client: redis.Redis) -> list[dict[str, Any]]:
    """The queued envelopes, oldest first (the worker BRPOPs from the right)."""
    return [json.loads(raw) for raw in reversed(client.lrange(keys.RUN_QUEUE, 0, -1))]


def _without_volatile(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope with per-message ids blanked, so two messages can be compared."""
    out = json.loads(json.dumps(envelope))
    for part in (out["headers"], out["properties"]):
        for name in VOLATILE:
            part.pop(name, None)
    return out


def test_pipeline_envelope_is_the_send_task_envelope(client: redis.Redis) -> None:
    app = make_app()
    SendTaskPublisher(app).publish([("auto-1", SLOT)])
    PipelinePublisher(app, client).publish([("auto-1", SLOT)])
    sent, piped = _queued(client)
    assert _without_volatile(piped) == _without_volatile(sent)
    assert piped["headers"]["id"] == piped["properties"]["correlation_id"] == piped["headers"]["root_id"]
    body = json.loads(base64.b64decode(piped["body"]))
    assert body == [["auto-1", SLOT], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]


def test_pipeline_keeps_fifo_order_and_one_message_per_slot(client: redis.Redis) -> None:
    calls = [(f"auto-{i}", SLOT) for i in range(2500)]
    ids = PipelinePublisher(make_app(), client).publish(calls)
    queued = _queued(client)
    assert [m["headers"]["id"] for m in queued] == ids
    assert len(set(ids)) == 2500


def test_redis_broker_gets_the_pipeline_publisher(client: redis.Redis) -> None:
    app = make_app()
    assert isinstance(make_publisher(app, client), PipelinePublisher)
    assert isinstance(make_publisher(app, client, mode="send_task"), SendTaskPublisher)
    app.conf.broker_url = "amqp://guest@localhost//"
    assert isinstance(make_publisher(app, client), SendTaskPublisher)


@pytest.mark.slow
def test_real_worker_runs_pipeline_messages_like_send_task_ones(client: redis.Redis, tmp_path: Path) -> None:
    app = make_app()
    PipelinePublisher(app, client).publish([("piped-1", SLOT), ("piped-2", SLOT)])
    SendTaskPublisher(app).publish([("sent-1", SLOT)])
    env = processes.celery_env()
    worker = processes.start_worker(env, "probe-publish", 1, tmp_path, app=PROBE_APP)
    try:
        done = processes.wait_until(lambda: len(beat_probe.received(client)) >= 3, 30)
        assert done, processes.log_of(worker)
    finally:
        processes.stop(worker)
    got = {r["automation_uuid"]: r for r in beat_probe.received(client)}
    assert sorted(got) == ["piped-1", "piped-2", "sent-1"]
    for record in got.values():
        assert record["scheduled_for"] == SLOT
        assert record["argsrepr"] == repr([record["automation_uuid"], SLOT])
        assert record["delivery_info"]["routing_key"] == keys.RUN_QUEUE
    assert client.llen(keys.RUN_QUEUE) == 0
