"""Which fetched records a run looks at, which it sends, and where the watermark moves: pure, no I/O.

The watermark is (instant, ids at that instant): records are fetched inclusively from the instant and
those whose (updated_at, id) was already processed are recognised and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from models.errors import PermanentIntegrationError

Record = dict[str, Any]


@dataclass(frozen=True)
class Watermark:
    """The newest instant a successful run processed, and the record ids processed at exactly it."""

    at: datetime | None
    ids: frozenset[str] = frozenset()

    def seen(self, when: datetime, record_id: str) -> bool:
        """Whether (when, id) is at or before the watermark, i.e. already processed."""
        if self.at is None:
            return False
        return when < self.at or (when == self.at and record_id in self.ids)

    def advanced(self, records: Iterable[Record]) -> Watermark:
        """The watermark after processing `records`: their newest updated_at and the ids at it."""
        newest, ids = self.at, set(self.ids)
        for rec in records:
            when, rid = updated_at(rec), record_id(rec)
            if newest is None or when > newest:
                newest, ids = when, {rid}
            elif when == newest:
                ids.add(rid)
        return Watermark(newest, frozenset(ids))


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 timestamp of a record as aware UTC (naive means UTC)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except (TypeError, ValueError) as exc:
            raise PermanentIntegrationError(f"record {what} is not an ISO 8601 time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def record_id(rec: Record) -> str:
    """A record's id as text (integration APIs mix numbers and strings)."""
    rid = rec.get("id")
    if rid is None or rid == "":
        raise PermanentIntegrationError("a fetched record has no id")
    return str(rid)


def updated_at(rec: Record) -> datetime:
    """When the record last changed (its created_at when it was never updated)."""
    return parse_time(rec.get("updated_at") or rec.get("created_at"), "updated_at")


def created_at(rec: Record) -> datetime:
    """When the record was created (its updated_at when the API does not say)."""
    return parse_time(rec.get("created_at") or rec.get("updated_at"), "created_at")


def newest_versions(records: Iterable[Record]) -> list[Record]:
    """One record per id, its newest version; the order of first appearance is kept."""
    newest: dict[str, Record] = {}
    for rec in records:
        rid = record_id(rec)
        kept = newest.get(rid)
        if kept is None or updated_at(rec) >= updated_at(kept):
            newest[rid] = rec
    return list(newest.values())


def candidates(records: Iterable[Record], since: Watermark, since_last_look_up: bool,
               applies_to_function: str) -> list[Record]:
    """The records a run looks at: unprocessed ones (with since_last_look_up), then new/update/all."""
    kind = (applies_to_function or "all").strip().lower()
    kept = []
    for rec in records:
        rid = record_id(rec)
        if since_last_look_up and since.seen(updated_at(rec), rid):
            continue
        is_new = not since.seen(created_at(rec), rid)
        if kind == "new" and not is_new:
            continue
        if kind == "update" and (is_new or updated_at(rec) <= created_at(rec)):
            continue
        kept.append(rec)
    return kept


@dataclass(frozen=True)
class Plan:
    """What a run sends, fixed once: batches of ids in (updated_at, id) order, and the target watermark."""

    batches: list[list[str]]
    fetched: int
    matched: int
    watermark: Watermark

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored on the run."""
        at = self.watermark.at.isoformat() if self.watermark.at else None
        return {"batches": self.batches, "fetched": self.fetched, "matched": self.matched,
                "watermark_at": at, "watermark_ids": sorted(self.watermark.ids)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Back from the run's stored plan."""
        at = parse_time(d["watermark_at"], "watermark_at") if d.get("watermark_at") else None
        return cls([list(map(str, b)) for b in d.get("batches", [])], int(d.get("fetched", 0)),
                   int(d.get("matched", 0)), Watermark(at, frozenset(map(str, d.get("watermark_ids", [])))))


def make_plan(fetched: list[Record], looked_at: list[Record], matches: Callable[[Record], bool],
              since: Watermark, batch_size: int) -> Plan:
    """Match, order and batch the records; the watermark covers every record fetched, matched or not."""
    matched = sorted((r for r in looked_at if matches(r)), key=lambda r: (updated_at(r), record_id(r)))
    ids = [record_id(r) for r in matched]
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    return Plan(batches, len(fetched), len(matched), since.advanced(fetched))
