"""Runs that outlive a blink of their services: Redis errors on the run lock, a database connection cut
while the run records its progress or outcome (retried once, then the task is retried and resumes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from models import keys
from models.errors import DatabaseUnavailable
from tasks import run_record as claim
from tasks.locks import Lock
from tasks.resilience import is_disconnect
from tasks.run import execute, run_automation
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, fresh, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]

RECORDS = [record(f"r{i}", i) for i in range(5)]  # batches of 2: three batches


def _redis_down(*_args: Any, **_kwargs: Any) -> Any:
    raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


def _cut() -> OperationalError:
    return OperationalError("UPDATE runs ...", {}, Exception("server closed the connection unexpectedly"))


def _keys(server: IntegrationServer) -> list[str]:
    return [inv.key.split(":")[1] for inv in server.invocations()]


def _cut_when(monkeypatch: pytest.MonkeyPatch, armed: Callable[[], bool], times: int) -> list[int]:
    """Every connection the run's writes open fails (as a terminated backend does) while `armed()`, `times`
    times in all; the count of cuts made."""
    made: list[int] = []

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @contextmanager
        def scope(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if armed() and len(made) < times:
                made.append(1)
                raise _cut()
            with original(*args, **kwargs) as conn:
                yield conn
        return scope

    monkeypatch.setattr(claim, "autocommit_scope", wrap(claim.autocommit_scope))
    monkeypatch.setattr(claim, "connection_scope", wrap(claim.connection_scope))
    return made


def test_redis_errors_on_extend_and_release_do_not_fail_the_run(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", RECORDS)
    auto = definitions(db, server)
    monkeypatch.setattr(Lock, "extend", _redis_down)
    monkeypatch.setattr(Lock, "release", _redis_down)
    summary = execute(auto.uuid, slot().isoformat())
    assert summary["status"] == "succeeded" and summary["records_sent"] == 5, summary
    assert _keys(server) == ["0", "1", "2"]
    assert fresh(db, auto).watermark_at is not None and run_of(db, auto).attempts == 1


def test_a_redis_error_before_the_claim_retries_the_task(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", RECORDS)
    auto = definitions(db, server)
    original, calls = Lock.acquire, []

    def flaky(self: Lock, token: str) -> bool:
        calls.append(token)
        return _redis_down() if len(calls) <= 2 else original(self, token)

    monkeypatch.setattr(Lock, "acquire", flaky)
    result = run_automation.apply(args=[auto.uuid, slot().isoformat()])
    assert result.successful(), result.traceback
    assert result.result["status"] == "succeeded" and len(calls) == 3
    assert _keys(server) == ["0", "1", "2"] and run_of(db, auto).attempts == 1
    assert rclient.get(keys.run_lock(auto.uuid)) is None


def test_redis_down_for_every_try_gives_up_without_a_run(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    auto = definitions(db, server)
    monkeypatch.setattr(Lock, "acquire", _redis_down)
    result = run_automation.apply(args=[auto.uuid, slot().isoformat()])
    assert result.failed() and "run lock" in str(result.result)
    assert server.state.fetches == []


def test_a_write_cut_once_is_retried_on_a_fresh_connection(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", RECORDS)
    auto = definitions(db, server)
    cuts = _cut_when(monkeypatch, lambda: len(server.invocations()) == 3, times=1)  # the outcome's write
    summary = execute(auto.uuid, slot().isoformat())
    assert cuts == [1] and summary["status"] == "succeeded" and summary["records_sent"] == 5, summary
    assert _keys(server) == ["0", "1", "2"] and run_of(db, auto).attempts == 1


def test_an_outcome_that_cannot_be_recorded_retries_the_task_with_the_same_keys(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", RECORDS)
    auto = definitions(db, server)
    cuts = _cut_when(monkeypatch, lambda: len(server.invocations()) == 3, times=2)
    with pytest.raises(DatabaseUnavailable):
        execute(auto.uuid, slot().isoformat())
    assert run_of(db, auto).status == "running"  # not failed: the database blinked
    result = run_automation.apply(args=[auto.uuid, slot().isoformat()])
    assert result.successful(), result.traceback
    run = run_of(db, auto)
    assert cuts == [1, 1] and run.status == "succeeded" and run.records_sent == 5
    assert _keys(server) == ["0", "1", "2", "2"]  # the unrecorded last batch again, with its own key
    applied = Counter(r["id"] for r in server.sent_records())
    assert sorted(applied) == [f"r{i}" for i in range(5)]
    assert {inv.key.split(":")[0] for inv in server.invocations()} == {run.uuid}


def test_a_cut_mid_run_retries_the_task_instead_of_failing_it(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", RECORDS)
    auto = definitions(db, server)
    cuts = _cut_when(monkeypatch, lambda: len(server.invocations()) == 3, times=2)
    result = run_automation.apply(args=[auto.uuid, slot().isoformat()])
    assert result.successful(), result.traceback
    assert cuts == [1, 1] and result.result["status"] == "succeeded", result.result
    assert run_of(db, auto).status == "succeeded"


def test_disconnects_are_told_apart_from_other_errors() -> None:
    assert is_disconnect(_cut())
    assert not is_disconnect(ValueError("no"))
