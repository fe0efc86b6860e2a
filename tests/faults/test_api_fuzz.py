"""Fault 7: at least 1,000 fuzzed API requests, no 5xx, no partial write.

That property test lives with the API (tests/api/test_fuzz.py, hypothesis, run by `make test` on SQLite and
PostgreSQL); it is not run a second time here. This guard fails if it ever shrinks below 1,000 requests.
"""

from __future__ import annotations

from tests.api import test_fuzz


def test_the_api_fuzz_suite_sends_at_least_1000_requests() -> None:
    assert test_fuzz.EXAMPLES >= 1000, f"tests/api/test_fuzz.py sends {test_fuzz.EXAMPLES} requests (< 1,000)"
    assert callable(getattr(test_fuzz, "test_odd_requests_never_5xx_and_never_write_partially", None))
