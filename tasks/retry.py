"""The retry policy of integration calls: exponential backoff with full jitter, Retry-After honoured.

Only TransientIntegrationError is retried (connection errors, timeouts, 5xx, 429); anything else,
a PermanentIntegrationError included, goes straight up to the run.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from models.errors import TransientIntegrationError
from models.settings import get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries a call gets and how long to wait between them."""

    attempts: int
    base_s: float
    cap_s: float

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        """RETRY_ATTEMPTS / RETRY_BASE_S / RETRY_CAP_S."""
        s = get_settings()
        return cls(attempts=s.retry_attempts, base_s=s.retry_base_s, cap_s=s.retry_cap_s)

    def delay_s(self, retry_number: int, retry_after_s: float | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^n)]; a larger Retry-After wins."""
        ceiling = min(self.cap_s, self.base_s * (2 ** retry_number))
        delay = random.uniform(0, ceiling)
        if retry_after_s is not None and retry_after_s > delay:
            return retry_after_s
        return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def call_with_retries(
    call: Callable[[], T],
    what: str,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[TransientIntegrationError], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying transient failures per the policy; the last failure is raised."""
    policy = policy or RetryPolicy.from_settings()
    for try_number in range(1, policy.attempts + 1):
        try:
            return call()
        except TransientIntegrationError as exc:
            if try_number >= policy.attempts:
                raise
            delay = policy.delay_s(try_number - 1, exc.retry_after_s)
            log.warning("%s failed (try %d of %d), retrying in %.2f s: %s",
                        what, try_number, policy.attempts, delay, exc)
            if on_retry is not None:
                on_retry(exc)
            sleep(delay)
    raise AssertionError("unreachable: attempts >= 1")
