"""The run message: the one contract between whoever enqueues a run (beat, the API, the command line, a
chain) and the worker that runs it.

`automations.run(automation_uuid, scheduled_for)` on the `automations` queue; the arguments are the
automation's UUID and the slot as ISO 8601 in UTC, never a secret. The envelope is the very JSON Celery
(protocol 2) and kombu's Redis transport would store for `send_task(RUN_TASK, args, queue=RUN_QUEUE)`
(`celery.app.amqp.as_task_v2`, `kombu.transport.virtual.Channel.basic_publish`, `redis.Channel._put`), built
from a template: `send_task` costs about 480 µs of CPU a message and beat must dispatch ≥ 5,000 slots/s.
Pushing it needs only Redis, so nothing that enqueues imports the Celery app. What it leaves out: the
`task-sent` event (Flower still sees the worker's received/started/succeeded events).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from celery.utils.nodenames import anon_nodename

from models import keys

#: The run task's name and queue.
RUN_TASK = "automations.run"
RUN_QUEUE = keys.RUN_QUEUE
MAX_PUSH = 1000  # values per LPUSH command

#: (automation_uuid, scheduled_for ISO 8601[, the automation's code, shown in Flower beside them])
RunCall = tuple[str, str] | tuple[str, str, str]
MAX_LABEL = 100  # characters of the automation's code shown in Flower


def run_call(automation_uuid: str, slot: datetime, label: str | None = None) -> RunCall:
    """The task's arguments for one slot of one automation, with its code for Flower when given."""
    return (automation_uuid, slot.isoformat(), label) if label else (automation_uuid, slot.isoformat())


def run_argsrepr(automation_uuid: str, slot_iso: str, label: str | None) -> str:
    """What Flower shows (and searches) as the run task's arguments: the automation's code beside the uuid
    and the slot, `automation <code>: ['<uuid>', '<slot>']` (the arguments themselves stay the two)."""
    args = repr([automation_uuid, slot_iso])
    return f"automation {label[:MAX_LABEL]}: {args}" if label else args


def parse_slot(value: str) -> datetime:
    """The slot argument (ISO 8601) as aware UTC."""
    slot = datetime.fromisoformat(value)
    return slot.replace(tzinfo=UTC) if slot.tzinfo is None else slot.astimezone(UTC)


class Envelopes:
    """Protocol-2 envelopes of run messages for one queue, from a template built once."""

    def __init__(self, queue: str = RUN_QUEUE, key_prefix: str = "", reply_to: str | None = None) -> None:
        self.queue = queue
        self.list_key = key_prefix + queue  # priority 0: the queue's own list
        self.reply_to = reply_to or str(uuid.uuid4())
        self.origin = anon_nodename()
        self._cached_template: str | None = None

    def push(self, client: redis.Redis, calls: Sequence[RunCall]) -> list[str]:
        """Push one message per call in one pipeline (LPUSH keeps FIFO order for the worker's BRPOP);
        returns the task ids."""
        ids = [str(uuid.uuid4()) for _ in calls]
        messages = [self.envelope(task_id, [call[0], call[1]], call[2] if len(call) > 2 else None)
                    for task_id, call in zip(ids, calls, strict=True)]
        with client.pipeline(transaction=False) as pipe:
            for start in range(0, len(messages), MAX_PUSH):
                pipe.lpush(self.list_key, *messages[start:start + MAX_PUSH])
            pipe.execute()
        return ids

    def envelope(self, task_id: str, args: list[str], label: str | None = None) -> str:
        """The JSON kombu's Redis transport stores for `send_task(RUN_TASK, args, queue=...)` (json.dumps
        per message costs more than all the rest of a dispatch; tests compare it, parsed, with a real
        send_task message)."""
        args_json = json.dumps(args)
        body = base64.b64encode((_BODY_HEAD + args_json + _BODY_TAIL).encode()).decode()
        return self._template % {
            "body": body, "id": task_id, "argsrepr": json.dumps(run_argsrepr(args[0], args[1], label)),
            "tag": uuid.uuid4(),
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
                    "correlation_id": holes["id"], "reply_to": self.reply_to,
                    "argsrepr": holes["argsrepr"],  # send_task's argsrepr option lands here too
                    "delivery_mode": 2,
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
