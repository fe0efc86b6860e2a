"""`automation-worker status`: beat's state, the queue, the workers seen and the health counts, on one
screen (or as one JSON object with --json). Reads Redis, the database and a Celery ping; imports no api/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from models import health_query, keys
from models.base import utcnow
from models.db import get_engine
from models.health import STATES
from models.liveness import beat_liveness
from models.redis_clients import client_for
from models.settings import Settings

PING_TIMEOUT_S = 3.0
REDIS_TIMEOUT_S = 2.0  # a dead Redis never hangs the terminal


@dataclass(frozen=True)
class Status:
    """What the screen shows."""

    beat: dict[str, Any]
    leader: str | None
    queue_length: int
    workers: list[str]
    counts: dict[str, int]
    late: list[dict[str, Any]]
    failing: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"beat": {**self.beat, "leader": self.leader}, "queue_length": self.queue_length,
                "workers": self.workers, "health": self.counts, "late": self.late, "failing": self.failing}


def gather(settings: Settings, top: int = 5) -> Status:
    """Read everything once (Redis, the database, a Celery ping of the workers)."""
    client = client_for(settings.redis_url, REDIS_TIMEOUT_S, REDIS_TIMEOUT_S, decode=False)
    beat = beat_liveness(client, settings.beat_stale_s).to_dict()
    leader = client.get(keys.BEAT_LEADER_LOCK)
    queue_length = int(client.llen(keys.RUN_QUEUE))
    now, late_s = utcnow(), settings.late_after_s
    with Session(get_engine(settings.database_url)) as db:
        counts = health_query.counts(db, now, late_s, client, settings.health_counts_cache_s)
        late = [p.to_dict() for p in health_query.late(db, now, late_s, top)]
        failing = [p.to_dict() for p in health_query.failing(db, now, late_s, top)]
    holder = leader.decode() if isinstance(leader, bytes) else leader
    return Status(beat, holder, queue_length, workers_seen(), counts, late, failing)


def workers_seen() -> list[str]:
    """The Celery workers that answer a ping within PING_TIMEOUT_S (their node names)."""
    from worker.celery_app import app

    replies = app.control.ping(timeout=PING_TIMEOUT_S) or []
    return sorted(name for reply in replies for name in reply)


def render(status: Status) -> str:
    """The one screen."""
    beat = status.beat
    age = beat["last_tick_age_s"]
    tick = f"last tick {age:.1f} s ago" if age is not None else "never ticked"
    leader = f"leader {status.leader}" if status.leader else "no leader"
    names = f": {', '.join(status.workers)}" if status.workers else ""
    lines = [
        f"beat      {beat['status']} ({tick}, {leader})",
        f"queue     {status.queue_length} run message(s) waiting",
        f"workers   {len(status.workers)} seen{names}",
        "health    " + "  ".join(f"{state} {status.counts.get(state, 0)}" for state in STATES),
    ]
    for title, problems in (("late", status.late), ("failing", status.failing)):
        for p in problems:
            h = p["health"]
            lines.append(f"  {title:<8}{p['code']} ({p['uuid']}) since {h['since']}: {h['reason']}")
    return "\n".join(lines)


def show(settings: Settings, as_json: bool) -> int:
    """Print the status; exit 0 when beat is ok and nothing is late or failing, 1 otherwise."""
    status = gather(settings)
    print(json.dumps(status.to_dict(), indent=2) if as_json else render(status))
    healthy = status.beat["status"] == "ok" and not status.counts.get("late") and not status.counts.get(
        "failing")
    return 0 if healthy else 1
