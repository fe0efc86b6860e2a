"""The sandbox's generated records: deterministic from a seed and the clock, so they change over time.

Every minute one new supplier, customer and item appears (the last 24 hours are served); each record
is updated every 1-4 hours (its own period), and an update changes its Balance, Status and so on.
The same minute always yields the same records, so two workers (or a test and a worker) agree.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

SEED = "sandbox-v1"
OBJECTS = ("supplier", "customer", "item")
WINDOW_MIN = 24 * 60
_NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne")
_KINDS = ("Supplies", "Traders", "Holdings", "Partners", "Foods", "Labs")
_CITIES = (("Sydney", "AU"), ("London", "GB"), ("Auckland", "NZ"), ("Toronto", "CA"), ("Austin", "US"))
_ITEMS = ("Widget", "Gadget", "Sprocket", "Gizmo", "Doohickey")


def _h(*parts: object) -> int:
    """A stable 64-bit number from the parts (never Python's randomised hash)."""
    text = "|".join(map(str, (SEED, *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _minute(t: datetime) -> int:
    """Minutes since the Unix epoch."""
    return int(t.timestamp() // 60)


def _at(minute: int, jitter_of: object) -> datetime:
    """A time within the minute, deterministic per record."""
    return datetime.fromtimestamp(minute * 60 + _h("s", jitter_of) % 60, UTC)


def records(applies_to: str, now: datetime) -> list[dict[str, Any]]:
    """Every record of the object as of `now` (the last 24 hours of minutes)."""
    current = _minute(now)
    out = (_record(applies_to, born, now) for born in range(current - WINDOW_MIN + 1, current + 1))
    return [r for r in out if r is not None]


def _record(applies_to: str, born: int, now: datetime) -> dict[str, Any] | None:
    """The record born in minute `born`, in its newest version not after `now` (None: not born yet)."""
    rid, created, period = _birth(applies_to, born)
    if created > now:
        return None
    version = (_minute(now) - born) // period
    updated, record = _version(applies_to, born, version)
    if updated > now:  # this minute's update is still to come: the previous version
        updated, record = _version(applies_to, born, version - 1)
    return record


@lru_cache(maxsize=8 * WINDOW_MIN)
def _birth(applies_to: str, born: int) -> tuple[str, datetime, int]:
    """A record's id, creation time and update period in minutes (fixed for its life)."""
    rid = f"{applies_to[:3].upper()}-{born}"
    return rid, _at(born, rid), 60 + _h("p", rid) % 180


@lru_cache(maxsize=16 * WINDOW_MIN)
def _version(applies_to: str, born: int, version: int) -> tuple[datetime, dict[str, Any]]:
    """One version of a record and the time it was written; generated once per process (the hashes cost
    ~40 ms a page otherwise). Callers must not modify the record."""
    rid, created, period = _birth(applies_to, born)
    updated = _at(born + version * period, (rid, version)) if version else created
    base = {"id": rid, "created_at": created.isoformat(), "updated_at": updated.isoformat()}
    fields = _item(rid, version) if applies_to == "item" else _party(rid, version)
    return updated, {**base, **fields, "Version": version}


def _party(rid: str, version: int) -> dict[str, Any]:
    """A supplier or customer: the demo criteria's fields (AccountNumber, ContactID, Name, ...)."""
    n = _h("n", rid)
    city, country = _CITIES[n % len(_CITIES)]
    return {
        "Name": f"{_NAMES[n % len(_NAMES)]} {_KINDS[(n >> 8) % len(_KINDS)]}",
        "AccountNumber": "1QKGUL" if n % 4 == 0 else f"AC{n % 100000:05d}",
        "ContactID": "" if n % 3 == 0 else f"C-{(n >> 16) % 100000:05d}",
        "Status": "ARCHIVED" if _h("st", rid, version) % 5 == 0 else "ACTIVE",
        "Balance": round((_h("b", rid, version) % 1_000_000) / 100, 2),
        "EmailAddress": f"accounts{n % 1000}@example.com",
        "Addresses": [{"AddressType": "POBOX", "City": city, "Country": country}],
    }


def _item(rid: str, version: int) -> dict[str, Any]:
    """An item with a price and stock level that move with each update."""
    n = _h("n", rid)
    return {
        "Name": f"{_ITEMS[n % len(_ITEMS)]} {n % 1000}",
        "Code": f"IT{n % 100000:05d}",
        "Status": "INACTIVE" if _h("st", rid, version) % 7 == 0 else "ACTIVE",
        "UnitPrice": round((_h("u", rid, version) % 50_000) / 100, 2),
        "QuantityOnHand": _h("q", rid, version) % 500,
    }


def page(applies_to: str, now: datetime, updated_since: datetime | None, cursor: str | None,
         limit: int) -> dict[str, Any]:
    """One page of the contract: records changed since (inclusive), ordered by (updated_at, id)."""
    rows = records(applies_to, now)
    if updated_since is not None:
        floor = updated_since.astimezone(UTC).isoformat()
        rows = [r for r in rows if r["updated_at"] >= floor]
    rows.sort(key=lambda r: (r["updated_at"], r["id"]))
    offset = int(cursor) if cursor and cursor.isdigit() else 0
    chunk = rows[offset:offset + limit]
    more = offset + limit < len(rows)
    return {"records": chunk, "next_cursor": str(offset + limit) if more else None}


def window_start(now: datetime) -> datetime:
    """The oldest creation time served."""
    return now - timedelta(minutes=WINDOW_MIN)
