"""The connection's budget against a real Redis: exact sliding windows, leases that a dead worker cannot
leak, the partner's pause and counts, app-wide and account-wide scopes, one round trip per permit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from models import keys
from models.base import utcnow
from models.errors import BudgetExceeded
from models.limits import Limits, limits_for
from models.settings import get_settings
from tasks.budget import Budget, Scope


@pytest.fixture()
def rc(redis_url: str, database_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    stale = list(client.scan_iter(keys.PREFIX + "budget:*"))
    if stale:
        client.delete(*stale)


@pytest.fixture()
def short(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases of about a second, waits of at most half a second."""
    settings = get_settings()
    values = {"http_connect_timeout_s": 0.3, "http_read_timeout_s": 0.5, "budget_lease_margin_s": 0.2,
              "budget_max_wait_s": 0.5}
    for name, value in values.items():
        monkeypatch.setattr(settings, name, value)


def _budget(rc: redis.Redis, limits: Limits, provider: str = "XERO", client_id: str | None = None,
            account: str | None = None, conn: str | None = None) -> Budget:
    return Budget(Scope(conn or str(uuid.uuid4()), provider, limits, client_id, account), rc)


def test_the_minute_window_lets_exactly_its_limit_through_then_defers_for_the_rest_of_it(
        rc: redis.Redis, short: None) -> None:
    budget = _budget(rc, Limits(per_minute=5, concurrent=None))
    for _ in range(5):
        budget.acquire("call")
    with pytest.raises(BudgetExceeded) as caught:
        budget.acquire("call 6")
    wait = (caught.value.resume_at - utcnow()).total_seconds()
    assert 55 < wait <= 60.5 and "per-minute limit reached" in caught.value.reason
    assert budget.state()["used_this_minute"] == 5


def test_the_day_window_counts_every_call_of_the_rolling_day(rc: redis.Redis, short: None) -> None:
    budget = _budget(rc, Limits(per_day=3, concurrent=None))
    for _ in range(3):
        budget.acquire("call")
    with pytest.raises(BudgetExceeded) as caught:
        budget.acquire("call 4")
    assert (caught.value.resume_at - utcnow()) > timedelta(hours=23, minutes=59)
    assert "per-day limit reached" in caught.value.reason and budget.state()["used_today"] == 3


def test_calls_in_flight_wait_for_a_lease_and_never_exceed_concurrent(rc: redis.Redis, short: None) -> None:
    budget = _budget(rc, Limits(concurrent=2))
    first, second = budget.acquire("a"), budget.acquire("b")
    threading.Timer(0.2, budget.release, args=(first,)).start()
    began = time.monotonic()
    third = budget.acquire("c")  # waits for the first to end
    assert 0.15 < time.monotonic() - began < 0.5 and budget.state()["in_flight"] == 2
    with pytest.raises(BudgetExceeded, match="concurrent limit"):
        budget.acquire("d")
    budget.release(second)
    budget.release(third)
    assert budget.state()["in_flight"] == 0


def test_a_dead_workers_lease_comes_back_within_its_ttl(rc: redis.Redis, short: None) -> None:
    budget = _budget(rc, Limits(concurrent=1))
    budget.acquire("a call whose worker is SIGKILLed: never released")
    assert budget.state()["in_flight"] == 1
    time.sleep(budget.lease_ms / 1000 + 0.05)  # connect + read + margin = 1.0 s
    assert budget.state()["in_flight"] == 0
    budget.acquire("the next call")


def test_a_pause_holds_every_worker_until_then_and_names_its_reason(rc: redis.Redis, short: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    conn = str(uuid.uuid4())
    one, other = _budget(rc, Limits(), conn=conn), _budget(rc, Limits(), conn=conn)  # two workers
    one.pause(3600, "XERO answered 429 (day limit); Retry-After 3600 s")
    with pytest.raises(BudgetExceeded) as caught:
        other.acquire("fetch")
    assert caught.value.reason.startswith("XERO answered 429 (day limit)")
    assert 3590 < (caught.value.resume_at - utcnow()).total_seconds() <= 3600
    one.pause(0.3, "a shorter pause does not shorten it")
    assert one.state()["paused_reason"].startswith("XERO answered 429")
    rc.delete(one.keys[0])
    one.pause(0.3, "short")
    monkeypatch.setattr(get_settings(), "budget_max_wait_s", 2.0)
    began = time.monotonic()
    _budget(rc, Limits(), conn=conn).acquire("after the pause")
    assert 0.2 < time.monotonic() - began < 1.0


def test_the_budget_follows_the_partners_remaining_counts(rc: redis.Redis, short: None) -> None:
    budget = _budget(rc, Limits(per_minute=60, per_day=5000, concurrent=None))
    budget.follow({"X-MinLimit-Remaining": "2", "X-DayLimit-Remaining": "4000"})
    state = budget.state()
    assert (state["used_this_minute"], state["used_today"]) == (58, 1000)
    budget.follow({"X-MinLimit-Remaining": "2", "X-DayLimit-Remaining": "4000"})  # already counted
    state = budget.state()
    assert (state["used_this_minute"], state["used_today"]) == (58, 1000)
    budget.acquire("1")
    budget.acquire("2")
    with pytest.raises(BudgetExceeded, match="per-minute"):
        budget.acquire("3")


def test_an_app_wide_limit_is_shared_by_the_connections_of_one_client_id(rc: redis.Redis,
                                                                          short: None) -> None:
    limits = Limits(concurrent=None, app_per_minute=3)
    a, b = _budget(rc, limits, client_id="app-1"), _budget(rc, limits, client_id="app-1")
    other_app = _budget(rc, limits, client_id="app-2")
    a.acquire("1")
    b.acquire("2")
    a.acquire("3")
    with pytest.raises(BudgetExceeded, match="app-per-minute"):
        b.acquire("4")
    other_app.acquire("another app's budget is its own")


def test_netsuite_concurrency_is_shared_by_the_connections_of_one_account(rc: redis.Redis,
                                                                          short: None) -> None:
    limits = limits_for("NETSUITE", {"concurrent": 1})
    a = _budget(rc, limits, provider="NETSUITE", account="TSTDRV1")
    b = _budget(rc, limits, provider="NETSUITE", account="TSTDRV1")
    c = _budget(rc, limits, provider="NETSUITE", account="TSTDRV2")
    lease = a.acquire("a")
    with pytest.raises(BudgetExceeded, match="concurrent"):
        b.acquire("b")
    c.release(c.acquire("another account"))
    a.release(lease)


def test_one_round_trip_per_permit(rc: redis.Redis, short: None) -> None:
    budget = _budget(rc, Limits(per_minute=100, per_day=1000, concurrent=5, app_per_minute=1000),
                     client_id="app")
    commands: list[str] = []
    original = rc.execute_command
    rc.execute_command = lambda *a, **k: commands.append(str(a[0])) or original(*a, **k)  # type: ignore[method-assign]
    try:
        lease = budget.acquire("call")
        taken = list(commands)
        budget.release(lease)
    finally:
        rc.execute_command = original  # type: ignore[method-assign]
    assert len(taken) == 1 and taken[0] in ("EVAL", "EVALSHA")
    assert commands[1:] == ["ZREM"]


def test_limits_in_force_follow_the_provider_and_the_overrides() -> None:
    assert limits_for("XERO", None) == Limits(60, 5000, 5, 10000)
    assert limits_for("QUICKBOOKS", None).per_minute == 500
    assert limits_for("ZOHO_BOOKS", {"per_day": 10000}).per_day == 10000
    assert limits_for("SANDBOX", None) == Limits(None, None, 10)
    assert limits_for("XERO", {"per_minute": None, "concurrent": 2}).public()["per_minute"] is None


class _Recording(redis.Redis):
    """A real client that also notes the name of each command it sends."""

    sent: list[str]

    def execute_command(self, *args: object, **options: object) -> object:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


def test_the_scripts_go_by_sha_and_survive_a_script_flush(redis_url: str, rc: redis.Redis) -> None:
    client = _Recording.from_url(redis_url, decode_responses=True)
    client.sent = []
    budget = _budget(client, Limits(per_minute=5, concurrent=2))
    budget.release(budget.acquire("fetch"))
    assert "EVALSHA" in client.sent and "EVAL" not in client.sent, client.sent
    rc.script_flush()  # what a Redis restart does to the script cache
    client.sent.clear()
    budget.release(budget.acquire("fetch"))
    assert client.sent[:3] == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"], client.sent
    assert budget.state()["used_this_minute"] == 2
