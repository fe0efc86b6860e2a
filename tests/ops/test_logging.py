"""Logging: JSON lines with the extra ids when LOG_FORMAT=json, and credentials never written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from models.logging_setup import RedactingFilter, configure_logging, redact
from models.settings import Settings
from worker.logging_hooks import TaskIds, _format_celery_handlers


@pytest.fixture()
def root_restored() -> Iterator[None]:
    """configure_logging changes the root logger: put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("POST /oauth/token client_id=a&client_secret=s3cr3t&grant_type=x", "s3cr3t"),
    ('{"refresh_token": "rt-12345", "x": 1}', "rt-12345"),
    ("user_password=Str0ngP@ss", "Str0ngP@ss"),
    ("password: hunter2", "hunter2"),
    ("connecting to postgresql://aw:pa55word@db:5432/aw", "pa55word"),
    ("redis://:redispass@127.0.0.1:6379/0", "redispass"),
])
def test_credentials_are_redacted(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked and "****" in masked


def test_ordinary_messages_are_untouched() -> None:
    line = "run end: automation 1f0c slot 2026-01-01T00:00:00+00:00 status succeeded token_type Bearer"
    assert redact(line) == line


def test_json_lines_carry_the_extra_ids_and_no_secret(root_restored: None,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="json", log_level="DEBUG"))
    log = logging.getLogger("tests.ops.json")
    ids = {"automation_uuid": "a-1", "run_uuid": "r-1"}
    log.info("refreshing with %s", "refresh_token=abc123", extra=ids)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "tests.ops.json"
    assert entry["automation_uuid"] == "a-1" and entry["run_uuid"] == "r-1"
    assert entry["time"].endswith("+00:00")
    assert "abc123" not in line and entry["message"] == "refreshing with refresh_token=****"


def test_text_format_and_level(root_restored: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format="text", log_level="WARNING"))
    logging.getLogger("tests.ops.text").info("hidden")
    logging.getLogger("tests.ops.text").warning("shown Bearer abcdefgh")
    err = capsys.readouterr().err
    assert "hidden" not in err and "WARNING tests.ops.text: shown Bearer ****" in err


def test_an_unknown_level_means_info(root_restored: None) -> None:
    configure_logging(Settings(log_level="LOUD"))
    assert logging.getLogger().level == logging.INFO


def test_celery_handlers_get_the_filters() -> None:
    logger = logging.Logger("celery-like")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    _format_celery_handlers(logger=logger)
    _format_celery_handlers(logger=logger)
    kinds = [type(f) for f in handler.filters]
    assert kinds.count(RedactingFilter) == 1 and kinds.count(TaskIds) == 1
