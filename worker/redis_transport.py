"""kombu's Redis transport with one reusable client per channel.

kombu's Redis channel builds a new `redis.Redis` for every operation outside the consuming connection
(`conn_or_acquire`): every acknowledgement, every unacked-index write, every event published. Building one
copies redis-py's table of ~170 response callbacks, about 0.1 ms of CPU, three times per task on a worker
(measured in bench/README.md). The client only borrows connections from the channel's pool, so one
client per channel (rebuilt when kombu replaces the pool after a disconnect) does the same work; commands
still check a connection out of the pool each time, so the client is as thread-safe as kombu's own.

The app selects this transport through `broker_transport` for `redis://` and `rediss://` broker URLs
(worker.celery_app); other schemes keep kombu's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

TRANSPORT = "worker.redis_transport:Transport"
SCHEMES = ("redis://", "rediss://")


def transport_for(broker_url: str) -> str | None:
    """This transport for a Redis broker URL; None (kombu's choice from the scheme) for any other."""
    return TRANSPORT if broker_url.startswith(SCHEMES) else None


class Channel(kombu_redis.Channel):
    """A Redis channel that reuses one synchronous client for as long as its connection pool lives."""

    _reused_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The given client, else this channel's reusable one (kombu builds a new one here each time)."""
        if client:
            yield client
            return
        pool = self.pool
        reused = self._reused_client
        if reused is None or reused.connection_pool is not pool:
            reused = self._reused_client = self._create_client()  # type: ignore[no-untyped-call]
        yield reused


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with `Channel` above."""

    Channel = Channel
