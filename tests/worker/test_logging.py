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


#: Every credential name, in every encoding a partner's error body or a URL may carry it (issue 11, 8).
CREDENTIAL_NAMES = ("client_secret", "access_token", "refresh_token", "user_password", "password", "api_key",
                    "token", "secret_key", "db_password", "x-api-key", "apiKey")
ENCODINGS = {
    "form": "grant_type=refresh_token&{name}={value}&client_id=abc",
    "form at the end": "grant_type=refresh_token&{name}={value}",
    "url-encoded form": "request=grant_type%3Drefresh_token%26{name}%3D{value}%26client_id%3Dabc",
    "double url-encoded": "next=%2Fcb%3Fq%3D{name}%253D{value}%2526x%253D1",
    "json": '{{"error": "invalid_client", "{name}": "{value}", "x": 1}}',
    "json, no spaces": '{{"{name}":"{value}"}}',
    "json in a json string": '{{"error_description": "{{\\"{name}\\": \\"{value}\\"}}"}}',
    "url-encoded json": "body=%7B%22{name}%22%3A%20%22{value}%22%7D",
    "python repr": "{{'{name}': '{value}', 'x': 1}}",
    "header": "{name}: {value}",
    "html-escaped json": "{{&quot;{name}&quot;: &quot;{value}&quot;}}",
}


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_credential_name_is_redacted_in_every_encoding(name: str, encoding: str) -> None:
    value = "S3cr3t-V4lue_x/y+z=="
    text = ENCODINGS[encoding].format(name=name, value=value)
    masked = redact(text)
    assert "S3cr3t" not in masked and "V4lue" not in masked, masked
    assert name in masked  # the name stays: the reader sees what was hidden


@pytest.mark.parametrize("value", ["ab%2Fcd%2Bef%3D%3D", "abc\\/def", "a.b-c~d"])
def test_a_value_with_encoded_characters_is_masked_whole(value: str) -> None:
    masked = redact(f"client_secret={value}&grant_type=x")
    assert masked == "client_secret=****&grant_type=x", masked


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("authorization=Bearer%20eyJhbGci.payload", "eyJhbGci"),
    ('{"authorization": "Bearer abcd1234"}', "abcd1234"),
    ('{\"Authorization\": \"Bearer abcd1234\"}', "abcd1234"),
    ("Authorization: Token abcd1234", "abcd1234"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("authorization%3A%20Bearer%20abcd1234", "abcd1234"),
    ("bearer+abcd1234 sent", "abcd1234"),
])
def test_bearer_and_authorization_values_are_redacted(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked and "****" in masked, masked


@pytest.mark.parametrize("line", [
    "token refresh of connection 1f0c: HTTP 400 (invalid_client)",
    "connection 1f0c needs reconnection: its refresh token was refused (invalid_grant)",
    "invoke batch 2/3 of run 5e1d: HTTP 500: {\"error\": \"planned 500\"}",
    "Idempotency-Key: 5e1d:0 token_type: Bearer",
    "GET http://127.0.0.1:8080/objects/supplier?updated_since=2030-01-01T00:00:00%2B00:00&limit=3: timed out",
])
def test_ordinary_error_texts_are_untouched(line: str) -> None:
    assert redact(line) == line


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
