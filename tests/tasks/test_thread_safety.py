"""Everything a run touches is safe with many threads on one connection (issue 17: the worker's default pool
is `threads`, WORKER_CONCURRENCY 64 runs in one process).

What the threads of one worker process share: the SQLAlchemy engine and its pool (sessions are per call),
the Redis client and its pool (run locks, heartbeats, the budget, refresh locks), the connection's
requests.Session (`session_for`), the compiled-criteria cache, the refresh of the connection's tokens and
its budget. Each test starts its threads together (a barrier) so they collide, and checks what a run
promises: each run recorded once, each batch applied once under its own Idempotency-Key, one token
refresh, the budget's limits held, no database connection used by two threads at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis
from sqlalchemy import event
from sqlalchemy.orm import Session

from models import keys
from models.db import get_engine, session_scope
from models.errors import BudgetExceeded
from models.limits import Limits
from models.redis_clients import redis_client
from models.run import Run
from models.settings import get_settings
from tasks import predicates, transport
from tasks.budget import Budget, Scope
from tasks.integration_client import IntegrationClient
from tasks.locks import Lock
from tasks.run import execute
from tasks.transport import session_for
from tests.support.factories import make_connection
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import REFRESH_TOKEN, definitions, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]

THREADS = 64  # WORKER_CONCURRENCY's default: one worker process runs this many at once
T = TypeVar("T")
CRITERIA = [{"group_condition": "AND", "rules": [
    {"field_name": "AccountNumber", "operator": "EQUALS", "value": "1QKGUL", "condition": "AND"}]}]


def together(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run fn(0..n-1) on n threads released at the same instant; their results (or exceptions raised)."""
    barrier = threading.Barrier(n)

    def start(i: int) -> T:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(start, i) for i in range(n)]
        return [f.result(timeout=120) for f in futures]


class CheckoutWatch:
    """Pool checkouts of the engine: a DBAPI connection must never be in two threads' hands at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.owner: dict[int, int] = {}
        self.shared: list[str] = []
        self.most_at_once = 0

    def checkout(self, dbapi_conn: Any, *_: Any) -> None:
        with self.lock:
            me, key = threading.get_ident(), id(dbapi_conn)
            if key in self.owner and self.owner[key] != me:
                self.shared.append(f"connection {key} checked out by {me} while {self.owner[key]} holds it")
            self.owner[key] = me
            self.most_at_once = max(self.most_at_once, len(self.owner))

    def checkin(self, dbapi_conn: Any, *_: Any) -> None:
        with self.lock:
            self.owner.pop(id(dbapi_conn), None)


@pytest.fixture()
def checkouts() -> Any:
    """The process engine's pool watched for the length of the test."""
    engine, watch = get_engine(), CheckoutWatch()
    event.listen(engine, "checkout", watch.checkout)
    event.listen(engine, "checkin", watch.checkin)
    yield watch
    event.remove(engine, "checkout", watch.checkout)
    event.remove(engine, "checkin", watch.checkin)


def test_sixty_four_runs_of_one_connection_on_threads_each_run_once_with_one_token_refresh(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis, checkouts: CheckoutWatch,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole run on 64 threads: one connection (its HTTP session, budget with concurrent=4, tokens that
    must be refreshed first), one criteria definition (one cache entry), the database and Redis shared."""
    monkeypatch.setattr(get_settings(), "http_read_timeout_s", 10.0)
    server.set_records("supplier", [
        record("a", 1, AccountNumber="1QKGUL"), record("b", 2, AccountNumber="x"),
        record("c", 3, AccountNumber="1qkgul"), record("d", 4, AccountNumber="1QKGUL")])
    server.require_tokens({"never-issued"}, REFRESH_TOKEN)  # the stored access token gets a 401 first
    server.state.invoke_delay_s = 0.02
    first = definitions(db, server, additional_criteria=True, criteria=CRITERIA)
    first.connection.rate_limits = {"concurrent": 4}
    db.commit()
    autos = [first] + [definitions(db, server, connection=first.connection, pf=first.partner_function,
                                   additional_criteria=True, criteria=CRITERIA) for _ in range(THREADS - 1)]
    the_slot = slot(7)
    predicates.clear_cache()

    summaries = together(THREADS, lambda i: execute(autos[i].uuid, the_slot.isoformat()))

    assert [s["status"] for s in summaries] == ["succeeded"] * THREADS, summaries
    runs = [run_of(db, a, the_slot) for a in autos]
    counts = {(r.records_fetched, r.records_matched, r.records_sent, r.attempts) for r in runs}
    assert counts == {(4, 3, 3, 1)}
    assert db.query(Run).count() == THREADS  # one row per slot, none twice
    expected_keys = {f"{r.uuid}:{batch}" for r in runs for batch in (0, 1)}  # batches of 2: a+c, d
    assert set(server.state.applied) == expected_keys
    assert len(server.invocations()) == len(expected_keys), "a batch was sent twice"
    for run in runs:
        sent = sorted(rec["id"] for key, inv in server.state.applied.items() if key.startswith(run.uuid)
                      for rec in inv.body["records"])
        assert sent == ["a", "c", "d"], (run.uuid, sent)
    assert (server.state.refreshes, server.state.refresh_successes) == (1, 1), "one refresh for all threads"
    assert server.state.max_in_flight <= 4, "the budget's concurrent limit held across threads"
    assert rclient.zcard(f"{keys.PREFIX}budget:{first.connection.uuid}:leases") == 0, "every lease returned"
    assert not list(rclient.scan_iter(keys.PREFIX + "run-lock:*")), "every run lock released"
    assert predicates.cache_size() == 1, "64 automations with one definition share one compiled entry"
    assert checkouts.most_at_once > 1 and not checkouts.shared, checkouts.shared


def test_the_connections_http_session_is_one_object_and_every_thread_gets_its_own_answers(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One requests.Session per connection for every thread; 64 threads x 15 calls, each answer the one
    its own request asked for (each thread fetches an object of its own). The provider's default budget
    (10 calls in flight) keeps the loopback server's listen backlog of 5 from dropping connections."""
    monkeypatch.setattr(get_settings(), "http_connect_timeout_s", 5.0)
    monkeypatch.setattr(get_settings(), "http_read_timeout_s", 5.0)
    conn = make_connection(db, api_domain=server.url, account_server=server.url)
    db.commit()
    for i in range(THREADS):
        server.set_records(f"thing{i}", [record(f"{i}-{n}", n, owner=i) for n in range(2)])
    transport._sessions.pop(conn.uuid, None)

    def calls(i: int) -> tuple[int, list[int]]:
        session = session_for(conn.uuid)
        client = IntegrationClient.for_connection(conn)
        owners = []
        for _ in range(15):
            body = client.get_json("objects_path", f"fetch thing{i}", {"limit": 10}, applies_to=f"thing{i}")
            owners += [r["owner"] for r in body["records"]]
        return id(session), owners

    results = together(THREADS, calls)
    assert len({sid for sid, _ in results}) == 1, "two sessions for one connection"
    assert id(session_for(conn.uuid)) == results[0][0]
    for i, (_, owners) in enumerate(results):
        assert owners == [i] * 30, f"thread {i} got another thread's answer: {set(owners)}"
    environment = transport._sessions[conn.uuid]._environment  # type: ignore[attr-defined]
    assert list(environment) == [("http", server.url.split("//", 1)[1])]


def test_a_token_refresh_on_one_connection_is_done_once_while_sixty_four_threads_wait_for_it(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every thread's call gets a 401 at once; the slow token endpoint is called once; all use its token."""
    monkeypatch.setattr(get_settings(), "http_read_timeout_s", 5.0)
    monkeypatch.setattr(get_settings(), "http_connect_timeout_s", 5.0)
    conn = make_connection(db, api_domain=server.url, account_server=server.url)  # 10 calls in flight
    db.commit()
    server.set_records("supplier", [record("a", 1)])
    server.require_tokens({"never-issued"}, REFRESH_TOKEN)
    server.set_token_delay(0.3)

    def call(_: int) -> str:
        client = IntegrationClient.for_connection(conn)
        client.get_json("objects_path", "fetch", {"limit": 10}, applies_to="supplier")
        return str(client._access_token)

    tokens_used = together(THREADS, call)
    assert (server.state.refreshes, server.state.refresh_successes) == (1, 1)
    assert set(tokens_used) == {"access-1"}
    assert server.state.max_tokens_in_flight == 1


def test_the_budget_holds_concurrent_and_per_minute_limits_across_threads(
        rclient: redis.Redis, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Budget per run (as IntegrationClient builds it), all on one connection's keys."""
    uuid = f"thread-budget-{time.time_ns()}"
    scope = Scope(uuid, "SANDBOX", Limits(concurrent=3))
    lock, state = threading.Lock(), {"in": 0, "max": 0}

    def hold(_: int) -> float:
        budget = Budget(scope)
        for _ in range(5):
            with budget.permit("call"):
                with lock:
                    state["in"] += 1
                    state["max"] = max(state["max"], state["in"])
                time.sleep(0.002)
                with lock:
                    state["in"] -= 1
        return budget.usage.wait_s

    waits = together(THREADS, hold)
    assert state["max"] <= 3 and state["max"] == 3, state
    assert rclient.zcard(scope.redis_keys()[3]) == 0, "every lease returned"
    assert sum(waits) > 0, "threads waited for permits"

    monkeypatch.setattr(get_settings(), "budget_max_wait_s", 0.0)
    minute = Scope(f"{uuid}-minute", "SANDBOX", Limits(per_minute=40, concurrent=None))

    def once(_: int) -> bool:
        try:
            Budget(minute).acquire("call")
            return True
        except BudgetExceeded:
            return False

    granted = together(THREADS, once)
    assert granted.count(True) == 40 and granted.count(False) == THREADS - 40
    rclient.delete(*scope.redis_keys(), *minute.redis_keys())


def test_the_compiled_criteria_cache_under_threads_with_evictions_and_clears(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """64 threads compile and use 32 definitions through a cache of 8 (evicting all the time) while one
    of them clears it now and then: each predicate is always its own criteria's."""
    monkeypatch.setattr(predicates, "_MAX_ENTRIES", 8)
    predicates.clear_cache()
    definitions_ = [[{"group_condition": "AND", "rules": [
        {"field_name": "k", "operator": "EQUALS", "value": f"v{i}", "condition": "AND"}]}] for i in range(32)]

    def use(t: int) -> int:
        rng, wrong = random.Random(t), 0
        for n in range(300):
            i = rng.randrange(32)
            predicate = predicates.tolerant_predicate_for(True, definitions_[i])
            wrong += (not predicate({"k": f"V{i}"})) + predicate({"k": f"v{(i + 1) % 32}"})
            if t == 0 and n % 50 == 0:
                predicates.clear_cache()
        return wrong

    assert sum(together(THREADS, use)) == 0
    assert predicates.cache_size() <= 8


def test_each_runs_tolerant_predicate_counts_only_its_own_uncomparable_values() -> None:
    """The compiled criteria are shared, the counts of values no rule could compare are the run's."""
    from tests.tasks.test_predicates import UNCOMPARABLE  # a datetime no rule can compare

    criteria = [{"group_condition": "AND", "rules": [
        {"field_name": "When", "operator": "GREATER_THAN", "value": "2024-01-01", "condition": "AND"}]}]
    good = [{"When": f"2024-0{m}-01"} for m in range(1, 10)]  # 8 of them after 2024-01-01

    def run(i: int) -> tuple[int, int]:
        predicate = predicates.tolerant_predicate_for(True, criteria)
        records = [{"When": UNCOMPARABLE}] * (i % 4 * 10) + good * 5
        matched = sum(map(predicate, records))
        return predicate.uncomparable, matched

    results = together(THREADS, run)
    for i, (uncomparable, matched) in enumerate(results):
        assert (uncomparable, matched) == (i % 4 * 10, 40), i


def test_redis_locks_and_commands_through_the_shared_client_stay_each_threads_own(
        rclient: redis.Redis) -> None:
    """The process's one Redis client (a pool) from 64 threads: locks acquire, extend and release as their
    holder only, and every reply is the reply to the thread's own command."""
    client = redis_client()
    prefix = f"{keys.PREFIX}thread-test:{time.time_ns()}"

    def work(i: int) -> int:
        wrong = 0
        lock = Lock(f"{prefix}:lock:{i % 8}", 5.0)  # 8 locks, 8 threads contend for each
        for n in range(100):
            token = f"{i}:{n}"
            if lock.acquire(token):
                wrong += lock.holder() != token
                wrong += not lock.extend(token)
                wrong += not lock.release(token)
            client.set(f"{prefix}:value:{i}", token)
            wrong += client.get(f"{prefix}:value:{i}") != token
        return wrong

    assert sum(together(THREADS, work)) == 0
    leftovers = list(rclient.scan_iter(f"{prefix}:lock:*"))
    assert leftovers == [], "a lock left held"
    rclient.delete(*rclient.scan_iter(f"{prefix}:*"))


def test_database_sessions_are_per_call_and_never_share_a_connection(
        db: Session, database_url: str, checkouts: CheckoutWatch) -> None:
    """64 threads each open sessions, write and read their own rows at once (the engine's pool shared)."""
    conn = make_connection(db)
    db.commit()

    def work(i: int) -> list[str]:
        from models.partner_function import PartnerFunction

        seen = []
        for n in range(5):
            with session_scope() as session:
                session.add(PartnerFunction(connection_id=conn.id, name=f"t{i}-{n}", direction="IMPORT"))
            with session_scope() as session:
                seen.append(session.query(PartnerFunction.name).filter_by(name=f"t{i}-{n}").scalar())
        return seen

    results = together(THREADS, work)
    assert results == [[f"t{i}-{n}" for n in range(5)] for i in range(THREADS)]
    assert checkouts.most_at_once > 1 and not checkouts.shared, checkouts.shared
