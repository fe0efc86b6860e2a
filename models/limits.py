"""Partner limits: the calls a connection may make to its integration API, by provider, overridable.

Pure definitions (no I/O): the run's budget (tasks/budget.py) enforces them in Redis, the API shows and
validates them. Defaults follow each provider's published limits (docs/partner-limits.md has the table
and its sources); a connection overrides any of them with `rate_limits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

#: The keys of a connection's `rate_limits` override.
KEYS = ("per_minute", "per_day", "concurrent")


@dataclass(frozen=True)
class Limits:
    """Calls per rolling minute, per rolling day, at once (None: no limit); an app-wide per-minute limit
    per (provider, client_id); and whether `concurrent` is shared account-wide (by remote_instance_id)."""

    per_minute: int | None = None
    per_day: int | None = None
    concurrent: int | None = 10
    app_per_minute: int | None = None
    account_wide: bool = False

    def public(self) -> dict[str, Any]:
        """The limits in force, as the API shows them."""
        return {"per_minute": self.per_minute, "per_day": self.per_day, "concurrent": self.concurrent,
                "app_per_minute": self.app_per_minute, "concurrent_scope":
                    "account" if self.account_wide else "connection"}


#: Published limits (docs/partner-limits.md names the sources). Every other provider: DEFAULT.
PROVIDER_DEFAULTS: Mapping[str, Limits] = {
    "XERO": Limits(per_minute=60, per_day=5000, concurrent=5, app_per_minute=10000),
    "QUICKBOOKS": Limits(per_minute=500, concurrent=10),
    "QUICKBOOKS_SANDBOX": Limits(per_minute=500, concurrent=10),
    "ZOHO_BOOKS": Limits(per_minute=100, per_day=1000, concurrent=None),
    "NETSUITE": Limits(concurrent=5, account_wide=True),
}
DEFAULT = Limits()


def limits_for(provider: str, overrides: Mapping[str, Any] | None) -> Limits:
    """The provider's defaults with the connection's overrides (a key set to None removes that limit)."""
    base = PROVIDER_DEFAULTS.get(provider, DEFAULT)
    if not overrides:
        return base
    return replace(base, **{k: overrides[k] for k in KEYS if k in overrides})
