"""The broker transport reuses one Redis client per channel, and still delivers, acks and publishes events."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Exchange, Queue

from models.settings import Settings
from worker import redis_transport
from worker.celery_app import make_app


@pytest.fixture
def connection(redis_url: str) -> Iterator[Connection]:
    """A kombu connection through the product's transport, on the tests' Redis."""
    with Connection(redis_url, transport=redis_transport.TRANSPORT) as conn:
        yield conn


def test_the_app_selects_the_transport_for_redis_urls() -> None:
    app = make_app(Settings(redis_url="redis://127.0.0.1:6379/0"))
    with app.connection_for_write() as conn:
        assert isinstance(conn.default_channel, redis_transport.Channel)
    tls = make_app(Settings(redis_url="rediss://127.0.0.1:6380/0"))
    assert tls.conf.broker_transport == redis_transport.TRANSPORT


def test_one_client_serves_every_operation_until_the_pool_changes(connection: Connection) -> None:
    channel = connection.default_channel
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.ping()
    given = object()
    with channel.conn_or_acquire(given) as client:
        assert client is given  # a caller's own client is used as is
    channel._disconnect_pools()  # what kombu does after a connection error
    with channel.conn_or_acquire() as after:
        assert after is not first
        assert after.connection_pool is channel.pool
        assert after.ping()


def test_messages_are_delivered_acked_and_fanned_out(connection: Connection, redis_url: str) -> None:
    queue = Queue("aw-test-transport", Exchange("aw-test-transport", type="direct"), "k", auto_delete=True)
    events = Exchange("aw-test-transport-events", type="fanout")
    channel = connection.default_channel
    subscriber = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(*channel._get_publish_topics(events.name, ""))  # where kombu publishes fanout
    try:
        with connection.Producer() as producer:
            producer.publish({"n": 1}, exchange=queue.exchange, routing_key="k", declare=[queue])
            producer.publish({"event": "task-succeeded"}, exchange=events, declare=[events])
        got = connection.SimpleQueue(queue).get(timeout=5)
        assert got.payload == {"n": 1}
        got.ack()
        with channel.conn_or_acquire() as client:
            assert client.hlen(channel.unacked_key) == 0  # the ack went through the reused client
        event = next((m for m in (subscriber.get_message(timeout=1) for _ in range(5)) if m), None)
        assert event is not None and json.loads(event["data"])["body"]  # published via the reused client
    finally:
        subscriber.close()


def test_other_broker_schemes_keep_kombus_own_transport() -> None:
    assert redis_transport.transport_for("redis://127.0.0.1:6379/0") == redis_transport.TRANSPORT
    assert redis_transport.transport_for("sentinel://127.0.0.1:26379") is None
    assert make_app(Settings(redis_url="memory://")).conf.broker_transport is None


def test_replies_are_parsed_by_hiredis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    connection = client.connection_pool.get_connection()
    try:
        assert type(connection._parser).__name__ == "_HiredisParser"  # the dependency is installed and used
        assert client.ping()
    finally:
        client.connection_pool.release(connection)
        client.close()
