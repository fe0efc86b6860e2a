"""The test sessions' Redis claim (tests/support/services.py): a claimed index is always emptied on
release, even when whoever used it flushed the claim away; an index another session claims is left alone."""

from __future__ import annotations

import redis

from tests.support.services import SESSION_CLAIM_KEY, claimed_db


def test_an_index_whose_claim_was_flushed_is_still_emptied_on_release(redis_url: str) -> None:
    with claimed_db(redis_url) as url:
        client = redis.Redis.from_url(url)
        client.flushdb()  # what bench_runs.py used to do: the claim goes with the rest
        client.set("left-behind", "x")
    assert client.dbsize() == 0  # free for the next session


def test_an_index_another_session_claimed_meanwhile_is_left_alone(redis_url: str) -> None:
    with claimed_db(redis_url) as url:
        client = redis.Redis.from_url(url)
        client.set(SESSION_CLAIM_KEY, "another-session")
        client.set("theirs", "x")
    try:
        assert client.get("theirs") == b"x"
    finally:
        client.flushdb()
