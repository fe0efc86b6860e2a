"""Publish many `automations.run` task messages at once: one Redis pipeline per batch.

`app.send_task` costs about 480 µs of CPU per message; beat must dispatch ≥ 5,000 slots/s. So the
pipeline publisher builds the very envelope Celery (protocol 2) and kombu's Redis transport would
build (`celery.app.amqp.as_task_v2`, `kombu.transport.virtual.Channel.basic_publish`, `redis.Channel._put`)
and LPUSHes it onto the queue's list. What it leaves out: the `task-sent` event (Flower still sees the
worker's received/started/succeeded events). Any broker other than plain Redis uses `send_task`.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import redis
from celery import Celery
from celery.utils.nodenames import anon_nodename

from models import keys

log = logging.getLogger(__name__)

RUN_TASK = "automations.run"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
MAX_PUSH = 1000  # values per LPUSH command

RunCall = tuple[str, str]  # (automation_uuid, scheduled_for ISO 8601)


class Publisher(Protocol):
    """Sends one `automations.run` message per (automation, slot); raises if any could not be sent."""

    def publish(self, calls: Sequence[RunCall]) -> list[str]: ...


class SendTaskPublisher:
    """The plain path: `app.send_task` per message (any broker; slower)."""

    def __init__(self, app: Celery, queue: str = keys.RUN_QUEUE) -> None:
        self.app = app
        self.queue = queue

    def publish(self, calls: Sequence[RunCall]) -> list[str]:
        """One send_task per call, on one producer connection."""
        ids: list[str] = []
        with self.app.producer_or_acquire() as producer:
            for automation_uuid, slot_iso in calls:
                result = self.app.send_task(
                    RUN_TASK, args=[automation_uuid, slot_iso], queue=self.queue, producer=producer
                )
                ids.append(str(result.id))
        return ids


class PipelinePublisher:
    """The fast path: protocol-2 envelopes pushed with one Redis pipeline per batch."""

    def __init__(self, app: Celery, client: redis.Redis, queue: str = keys.RUN_QUEUE) -> None:
        self.client = client
        self.queue = queue
        options = app.conf.broker_transport_options or {}
        self.list_key = str(options.get("global_keyprefix", "")) + queue  # priority 0: the queue's own list
        self.reply_to = str(app.thread_oid)
        self.origin = anon_nodename()
        self._cached_template: str | None = None

    def publish(self, calls: Sequence[RunCall]) -> list[str]:
        """Push every message in one pipeline (LPUSH keeps FIFO order for the worker's BRPOP)."""
        ids = [str(uuid.uuid4()) for _ in calls]
        messages = [self.envelope(task_id, list(call)) for task_id, call in zip(ids, calls, strict=True)]
        with self.client.pipeline(transaction=False) as pipe:
            for start in range(0, len(messages), MAX_PUSH):
                pipe.lpush(self.list_key, *messages[start:start + MAX_PUSH])
            pipe.execute()
        return ids

    def envelope(self, task_id: str, args: list[str]) -> str:
        """The JSON kombu's Redis transport stores for `send_task(RUN_TASK, args, queue=...)`.

        Built from a template (json.dumps per message costs more than all the rest of the dispatch);
        tests compare it, parsed, with a real send_task message.
        """
        args_json = json.dumps(args)
        body = base64.b64encode((_BODY_HEAD + args_json + _BODY_TAIL).encode()).decode()
        return self._template % {
            "body": body, "id": task_id, "argsrepr": json.dumps(repr(args)), "tag": uuid.uuid4(),
        }

    @property
    def _template(self) -> str:
        """The envelope with %(name)s holes for the per-message values, built once."""
        if self._cached_template is None:
            holes = {"id": "\x00id", "argsrepr": "\x00argsrepr"}
            envelope = {
                "body": "\x00body", "content-encoding": "utf-8", "content-type": "application/json",
                "headers": self.headers(holes["id"], []) | {"argsrepr": holes["argsrepr"]},
                "properties": {
                    "correlation_id": holes["id"], "reply_to": self.reply_to, "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": self.queue}, "priority": 0,
                    "body_encoding": "base64", "delivery_tag": "\x00tag",
                },
            }
            text = json.dumps(envelope).replace("%", "%%")
            text = text.replace('"\\u0000argsrepr"', "%(argsrepr)s")
            for name in ("id", "body", "tag"):
                text = text.replace(f"\\u0000{name}", f"%({name})s")
            self._cached_template = text
        return self._cached_template

    def headers(self, task_id: str, args: list[str]) -> dict[str, Any]:
        """Celery's protocol-2 headers (`as_task_v2`) for a plain task with positional args."""
        return {
            "lang": "py", "task": RUN_TASK, "id": task_id, "shadow": None, "eta": None, "expires": None,
            "group": None, "group_index": None, "retries": 0, "timelimit": [None, None],
            "root_id": task_id, "parent_id": None, "argsrepr": repr(args), "kwargsrepr": "{}",
            "origin": self.origin, "ignore_result": None, "replaced_task_nesting": 0,
            "stamped_headers": None, "stamps": {},
        }


_BODY_HEAD = "["
_BODY_TAIL = ', {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]'


def make_publisher(app: Celery, client: redis.Redis | None, mode: str = "auto") -> Publisher:
    """The pipeline publisher for a plain Redis broker, else (or with mode "send_task") send_task."""
    broker = str(app.conf.broker_url or "")
    if mode == "pipeline" or (mode == "auto" and broker.startswith(REDIS_SCHEMES) and client is not None):
        if client is None:
            raise ValueError("the pipeline publisher needs a Redis client")
        return PipelinePublisher(app, client)
    log.info("beat publishes with send_task (broker %s, mode %s)", broker.split("://", 1)[0], mode)
    return SendTaskPublisher(app)
