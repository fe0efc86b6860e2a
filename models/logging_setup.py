"""Logging for every process (CLI, API, beat, workers): text or JSON lines, credentials always redacted."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from models.settings import Settings, get_settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Loggers uvicorn gives handlers of their own; they are sent through the root handler instead.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
#: Attributes every LogRecord has; anything else on a record is an `extra` and goes into the JSON object.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}  # color_message: uvicorn's ANSI copy of the message
# Credentials are masked in every form a log line, a URL or a partner's error body carries them: plain
# (`name=value`, `name: value`), URL-encoded once or twice (`name%3Dvalue`, `name%253Dvalue`), JSON, JSON
# inside a JSON string (`\"name\": \"value\"`), HTML-escaped JSON, Python reprs, and bearer tokens.
#: A name whose value is a credential: any word ending in one of these (`db_password`, `x-api-key`, ...).
_NAME = (r"(?<![A-Za-z0-9_.-])[A-Za-z0-9_.-]*?"
         r"(?:secret[_-]?key|private[_-]?key|api[_-]?key|secret|password|passwd|token)")
#: An optional quote around a name or a value: plain, backslash-escaped, URL-encoded, HTML-escaped.
_QUOTE = r"(?:\\*[\"']|%(?:25)?2[27]|&quot;|&#3[49];)?"
_SPACE = r"(?:\s|%(?:25)?20|\+)*"
#: `=` or `:`, plain or URL-encoded (once or twice), with spaces around.
_SEP = _SPACE + r"(?:[=:]|%(?:25)?3[AaDd])" + _SPACE
#: The value: up to a delimiter (`&`, a quote, `,`, `;`, `}`, a space), in any of those encodings.
_VALUE = (r"(?:%(?!(?:25)?(?:2[026Cc]|27|3[Bb]|5[Cc]|7[Dd]))[0-9A-Fa-f]{2}|\\/"
          r"|[^\s&\"',;}%\\<>)\]])+")
_REDACTIONS = (
    # An Authorization header's whole value, whatever its scheme.
    (re.compile(r"(?i)(\bauthorization" + _QUOTE + _SEP + _QUOTE + r")"
                r"(?:(?:bearer|basic|token|digest)(?:\s|%(?:25)?20|\+)+)?" + _VALUE), r"\1****"),
    (re.compile(r"(?i)\b(bearer|basic)(?:\s|%(?:25)?20|\+)+[A-Za-z0-9._~+/=%-]{4,}"), r"\1 ****"),
    (re.compile(r"(?i)(" + _NAME + _QUOTE + _SEP + _QUOTE + r")" + _VALUE), r"\1****"),
    (re.compile(r"(?i)(://[^/\s:@]*:)[^@\s/]+@"), r"\1****@"),
)


def redact(text: str) -> str:
    """Mask anything that looks like a credential: bearer tokens and Authorization values, the value of
    any name ending in secret / password / token / api_key (in any of the encodings above), URL passwords."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A safety net on every handler: the formatted message is redacted before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redact it, and drop the args so nothing is formatted twice."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra ids, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record; values JSON cannot hold are written as their text."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_formatter(settings: Settings | None = None) -> logging.Formatter:
    """The formatter LOG_FORMAT asks for (`json`, anything else is text)."""
    s = settings or get_settings()
    return JsonFormatter() if s.log_format.strip().lower() == "json" else logging.Formatter(TEXT_FORMAT)


def prepare_handler(handler: logging.Handler, settings: Settings | None = None,
                    keep_text: bool = False) -> None:
    """Give a handler the redaction filter (once) and LOG_FORMAT's formatter (`keep_text`: only for JSON)."""
    s = settings or get_settings()
    if not keep_text or s.log_format.strip().lower() == "json":
        handler.setFormatter(make_formatter(s))
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())


def level_of(settings: Settings) -> int:
    """LOG_LEVEL as a number; an unknown name means INFO rather than a crash at start-up."""
    level = logging.getLevelName(settings.log_level.strip().upper())
    return level if isinstance(level, int) else logging.INFO


def configure_logging(settings: Settings | None = None) -> None:
    """Point the root logger at stderr with LOG_FORMAT and LOG_LEVEL; safe to call more than once."""
    s = settings or get_settings()
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_automation_worker", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    handler._automation_worker = True  # type: ignore[attr-defined]
    prepare_handler(handler, s)
    root.addHandler(handler)
    root.setLevel(level_of(s))
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
