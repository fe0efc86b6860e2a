"""Following `automation_uuid` from the task to the run record (issue 13): each file is entered once.

A profiler hook records, in call order, the file of every product frame that takes a parameter named
`automation_uuid`. The run's identifier goes from the task (tasks/run.py) to the lock's key
(models/keys.py) to the run record (tasks/run_record.py), which answers with the automation and its run;
from there on the run is addressed by what the record gave. A helper in a file already left that takes the
uuid again (a return to an earlier file) fails the test, on every path a delivery can take.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import redis
from sqlalchemy.orm import Session

from models import keys
from models.automation import PAUSED
from models.settings import get_settings
from tasks.locks import Lock
from tasks.run import execute, run_automation
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import definitions, record, run_of, slot

pytest_plugins = ["tests.support.run_support"]

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = tuple(str(ROOT / package) + "/" for package in ("models", "tasks", "worker", "api", "sandbox"))


@contextmanager
def uuid_path() -> Iterator[list[str]]:
    """The files, in call order, of the product frames taking `automation_uuid` (consecutive ones merged)."""
    files: list[str] = []

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        code = frame.f_code
        if event != "call" or not code.co_filename.startswith(PRODUCT):
            return
        if "automation_uuid" in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]:
            name = str(Path(code.co_filename).relative_to(ROOT))
            if not files or files[-1] != name:
                files.append(name)

    sys.setprofile(hook)
    try:
        yield files
    finally:
        sys.setprofile(None)


def _follow(run: Callable[[], Any]) -> tuple[Any, list[str]]:
    with uuid_path() as files:
        summary = run()
    return summary, files


def _assert_one_way(files: list[str]) -> None:
    assert files[0] == "tasks/run.py" and files[-1] == "tasks/run_record.py", files
    assert len(files) == len(set(files)), f"a file entered twice: {' -> '.join(files)}"


def test_a_successful_run(db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record("a", 1), record("b", 2), record("c", 3)])
    auto = definitions(db, server)
    summary, files = _follow(lambda: execute(auto.uuid, slot().isoformat()))
    assert summary["status"] == "succeeded" and summary["automation_uuid"] == auto.uuid
    assert files == ["tasks/run.py", "models/keys.py", "tasks/run_record.py"]


def test_a_skipped_run(db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    auto = definitions(db, server, status=PAUSED)
    summary, files = _follow(lambda: execute(auto.uuid, slot().isoformat()))
    assert summary["status"] == "skipped"
    _assert_one_way(files)


@pytest.mark.parametrize("holder", ["this slot", "another slot"])
def test_a_run_whose_lock_is_held(db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis,
                                  holder: str) -> None:
    auto = definitions(db, server)
    held_by = slot() if holder == "this slot" else slot(-5)
    rclient.set(keys.run_lock(auto.uuid), f"{held_by.isoformat()}|other-worker|x", ex=60)
    summary, files = _follow(lambda: execute(auto.uuid, slot().isoformat()))
    assert summary["status"] == ("queued" if holder == "this slot" else "skipped"), summary
    _assert_one_way(files)


def test_a_run_that_completes_an_earlier_unfinished_run_first(
        db: Session, server: IntegrationServer, fast: None, rclient: redis.Redis) -> None:
    server.set_records("supplier", [record(f"r{i}", i) for i in range(5)])  # batches of 2: 3 batches
    auto = definitions(db, server)
    server.fail_next("invoke", 4, kind="status", status=500, skip=1)
    execute(auto.uuid, slot(1).isoformat())
    earlier = run_of(db, auto, slot(1))
    assert earlier.batches_sent == 1 and earlier.plan is not None
    earlier.status = "running"  # as a SIGKILL leaves it
    db.commit()
    summary, files = _follow(lambda: execute(auto.uuid, slot(2).isoformat()))
    assert summary["status"] == "below_threshold"  # the earlier run's plan took every record
    assert run_of(db, auto, slot(1)).status == "succeeded"
    _assert_one_way(files)


def test_a_deleted_automation(db: Session, server: IntegrationServer, fast: None,
                              rclient: redis.Redis) -> None:
    auto = definitions(db, server)
    uuid = auto.uuid
    db.delete(auto)
    db.commit()
    summary, files = _follow(lambda: execute(uuid, slot().isoformat()))
    assert (summary["status"], summary["automation_uuid"]) == ("deleted", uuid)
    _assert_one_way(files)


def test_the_task_itself_and_its_giving_up(db: Session, server: IntegrationServer, fast: None,
                                          rclient: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    server.set_records("supplier", [record("a", 1)])
    auto = definitions(db, server)
    result, files = _follow(lambda: run_automation.apply(args=[auto.uuid, slot().isoformat()]))
    assert result.successful() and result.result["status"] == "succeeded", result.traceback
    assert files == ["tasks/run.py", "models/keys.py", "tasks/run_record.py"]

    def redis_down(*_args: Any) -> bool:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    monkeypatch.setattr(Lock, "acquire", redis_down)  # the last try: the run is given up on
    last = get_settings().retry_attempts
    result, files = _follow(lambda: run_automation.apply(args=[auto.uuid, slot(5).isoformat()], retries=last))
    assert result.failed() and "run lock" in str(result.result)
    assert files == ["tasks/run.py", "models/keys.py", "tasks/run_record.py"]  # fail_unfinished
