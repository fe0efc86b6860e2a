"""Provider codes: RootFi-style upper-case codes, unknown providers kept as given (normalised)."""

from __future__ import annotations

import re

KNOWN_PROVIDERS: frozenset[str] = frozenset(
    {
        "ZOHO_BOOKS", "QUICKBOOKS_SANDBOX", "QUICKBOOKS", "XERO", "TALLY", "SAGE_CLOUD_ACCOUNTING",
        "MS_DYNAMICS_365", "SAGE_ZA_CLOUD_ACCOUNTING", "MYOB_BUSINESS", "WAVE", "ODOO_ACCOUNTING",
        "NETSUITE", "WAFEQ", "MEKARI_JURNAL", "BUSY", "ROOTFI_SANDBOX", "QOYOD", "SANDBOX",
    }
)

_SEPARATORS = re.compile(r"[\s\-]+")


def provider_code(name: str) -> str:
    """"QuickBooks" → QUICKBOOKS, "Zoho Books" → ZOHO_BOOKS, "ms-dynamics 365" → MS_DYNAMICS_365."""
    return _SEPARATORS.sub("_", name.strip()).upper()


def is_known(code: str) -> bool:
    """Whether the code is in RootFi's list (or our SANDBOX); unknown ones are still accepted."""
    return code in KNOWN_PROVIDERS
