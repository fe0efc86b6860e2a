"""Leader lock (acquire, extend, lose, reacquire) and beat surviving database and Redis errors."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from models import keys
from tests.support.beat_support import (
    RecordingPublisher,
    due_automation,
    hour_ahead,
    make_test_beat,
)
from worker.beat.leader import LeaderLock

S = timedelta(seconds=1)


def test_one_holder_extend_and_release(client: redis.Redis) -> None:
    a, b = LeaderLock(client, "a", 5), LeaderLock(client, "b", 5)
    assert a.acquire() and not b.acquire()
    client.pexpire(keys.BEAT_LEADER_LOCK, 1000)
    client.set(keys.SCHEDULE_GENERATION, 7)
    assert a.extend() == (True, b"7")
    assert client.pttl(keys.BEAT_LEADER_LOCK) > 4000
    b.release()  # not the holder: no effect
    assert client.get(keys.BEAT_LEADER_LOCK) == b"a"
    a.release()
    assert client.get(keys.BEAT_LEADER_LOCK) is None and b.acquire()


def test_lost_lock_stops_leading_and_is_reacquired(client: redis.Redis, caplog: Any) -> None:
    a, b = LeaderLock(client, "a", 0.3), LeaderLock(client, "b", 5)
    assert a.acquire()
    time.sleep(0.4)  # a stalled past its TTL
    assert b.acquire()
    with caplog.at_level(logging.WARNING, logger="worker.beat.leader"):
        assert a.extend()[0] is False
    assert "lost the leader lock" in caplog.text and not a.held
    assert not a.acquire()  # b holds it; a keeps trying, it does not exit
    b.release()
    assert a.acquire() and a.held


def test_standby_beat_does_not_dispatch_until_the_leader_is_gone(db: Session, client: redis.Redis) -> None:
    t = hour_ahead()
    first = due_automation(db, t + 10 * S)
    leader_pub, standby_pub = RecordingPublisher(), RecordingPublisher()
    leader = make_test_beat(client, leader_pub, "leader", beat_lock_ttl_s=0.5)
    standby = make_test_beat(client, standby_pub, "standby", beat_lock_ttl_s=0.5)
    leader.tick(t)
    standby.tick(t)
    assert leader.lock.held and not standby.lock.held
    second = due_automation(db, t)
    client.incr(keys.SCHEDULE_GENERATION)
    standby.tick(t + S)
    assert standby_pub.calls == []
    time.sleep(0.6)  # the leader died: its lock expires
    standby.tick(t + 11 * S)
    assert standby.lock.held
    expected = [(first.uuid, (t + 10 * S).isoformat()), (second.uuid, t.isoformat())]
    assert sorted(standby_pub.calls) == sorted(expected)
    leader.tick(t + 12 * S)  # the old leader came back: stands by, dispatches nothing
    assert not leader.lock.held and leader_pub.calls == []
    standby.close()


def test_database_error_is_logged_and_the_next_tick_retries(db: Session, client: redis.Redis,
                                                            caplog: Any) -> None:
    t = hour_ahead()
    auto = due_automation(db, t)
    pub = RecordingPublisher()
    beat = make_test_beat(client, pub)
    good = beat.dispatcher.engine
    beat.dispatcher.engine = create_engine("sqlite:////proc/no-such-dir/beat.db")
    with caplog.at_level(logging.ERROR, logger="worker.beat.scheduler"):
        assert beat.tick(t + S) == beat.tick_s
    assert "database error in tick" in caplog.text and "test-beat" in caplog.text
    beat.dispatcher.engine = good
    beat.tick(t + 2 * S)
    assert pub.calls == [(auto.uuid, t.isoformat())]
    beat.close()


def test_redis_error_is_logged_and_the_next_tick_retries(db: Session, client: redis.Redis,
                                                         caplog: Any) -> None:
    t = hour_ahead()
    auto = due_automation(db, t)
    pub = RecordingPublisher()
    beat = make_test_beat(client, pub)
    assert beat.tick(t - S) > 0 and beat.lock.held
    real = client.execute_command
    client.execute_command = _raise_connection_error  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.ERROR, logger="worker.beat.scheduler"):
            assert beat.tick(t + S) == beat.tick_s
    finally:
        client.execute_command = real  # type: ignore[method-assign]
    assert "Redis error in tick" in caplog.text and not beat.lock.held
    beat.tick(t + 2 * S)  # re-adopts its own lock, re-reads, dispatches
    assert beat.lock.held and pub.calls == [(auto.uuid, t.isoformat())]
    beat.close()


def test_unreachable_redis_never_raises(database_url: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2,
                       retry=Retry(NoBackoff(), 0))
    beat = make_test_beat(dead, RecordingPublisher())
    for _ in range(3):
        assert beat.tick() == beat.tick_s
    assert not beat.lock.held
    beat.close()


def _raise_connection_error(*args: Any, **kwargs: Any) -> Any:
    raise redis.ConnectionError("simulated: connection reset by peer")
