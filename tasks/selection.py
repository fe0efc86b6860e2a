"""Which fetched records a run looks at, which it sends, and where the watermark moves: pure, no I/O.

The watermark is (instant, ids at that instant): records are fetched inclusively from the instant and
those whose (updated_at, id) was already processed are recognised and dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from models.errors import PermanentIntegrationError

Record = dict[str, Any]


@dataclass(frozen=True)
class Watermark:
    """Where a successful run left off: the instant it processed up to, the record ids at exactly that
    instant, and the records it processed that are dated after it (`ahead`: id → updated_at).

    The instant never passes the processing run's start (less a small skew), so a record dated in the
    future, or one that reaches the partner's API late, stays in later fetches instead of hiding what
    comes after it; `ahead` recognises the versions already processed. `version` is what the stored
    watermark's compare-and-set checks: a plan moves it only from where it started.
    """

    at: datetime | None
    ids: frozenset[str] = frozenset()
    ahead: Mapping[str, datetime] = field(default_factory=dict)
    version: int | None = None

    def seen(self, when: datetime, record_id: str) -> bool:
        """Whether (when, id) is at or before the watermark, or a version processed ahead of it."""
        ahead = self.ahead.get(record_id)
        if ahead is not None and when <= ahead:
            return True
        if self.at is None:
            return False
        return when < self.at or (when == self.at and record_id in self.ids)

    def advanced(self, records: Iterable[Record], cap: datetime | None = None) -> Watermark:
        """The watermark after processing `records`: their newest updated_at, never beyond `cap` nor
        behind the current instant; versions processed after the new instant are kept in `ahead`."""
        versions: dict[str, datetime] = dict(self.ahead)
        at_ids = set(self.ids)
        for rec in records:
            when, rid = updated_at(rec), record_id(rec)
            if self.at is not None and when == self.at:
                at_ids.add(rid)
            if self.at is None or when > self.at:
                kept = versions.get(rid)
                versions[rid] = when if kept is None or when > kept else kept
        newest = max([*versions.values(), *([self.at] if self.at else [])], default=None)
        at = newest if cap is None or newest is None or newest <= cap else cap
        if self.at is not None and (at is None or at < self.at):
            at = self.at
        if at is None:
            return Watermark(None, frozenset(), {}, self.version)
        ids = {rid for rid, when in versions.items() if when == at}
        if at == self.at:
            ids |= at_ids
        ahead = {rid: when for rid, when in versions.items() if when > at}
        return Watermark(at, frozenset(ids), ahead, self.version)

    def ahead_json(self) -> dict[str, str]:
        """`ahead` as stored (ISO 8601 times)."""
        return {rid: when.isoformat() for rid, when in sorted(self.ahead.items())}

    @staticmethod
    def ahead_of(stored: Mapping[str, Any] | None) -> dict[str, datetime]:
        """`ahead` back from its stored form."""
        return {str(rid): parse_time(when, "watermark_ahead") for rid, when in (stored or {}).items()}


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
    """What a run sends, fixed once: batches of ids in (updated_at, id) order, the very record versions
    they carry, the watermark it started from and the one it leads to.

    The versions are kept with the plan because a record may change before a resumed run sends its
    batch: sent under the old batch's Idempotency-Key, a newer version would be dropped by the partner if
    the batch had been applied, or applied twice (now and by the next run) if it had not.
    """

    batches: list[list[str]]
    fetched: int
    matched: int
    watermark: Watermark
    since: Watermark | None = None
    notes: tuple[str, ...] = ()
    records: Mapping[str, Record] | None = None
    cap: datetime | None = None  # the watermark never passes it (the run's start less the skew)

    def acknowledged(self, batches: int) -> Watermark | None:
        """The watermark after only the first `batches` batches: their records are processed, and so is
        every record dated before the last of them (it did not match); None when nothing is to move."""
        if batches <= 0 or self.since is None or self.records is None:
            return None
        sent = [self.records[i] for batch in self.batches[:batches] for i in batch if i in self.records]
        return self.since.advanced(sent, self.cap)

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored on the run."""
        out: dict[str, Any] = {"batches": self.batches, "fetched": self.fetched, "matched": self.matched,
                               **_watermark_json(self.watermark, "watermark")}
        if self.since is not None:
            out["since"] = {**_watermark_json(self.since, "watermark"), "version": self.since.version}
        if self.notes:
            out["notes"] = list(self.notes)
        if self.records is not None:
            out["records"] = dict(self.records)
        if self.cap is not None:
            out["cap"] = self.cap.isoformat()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Back from the run's stored plan (a plan stored before `since` existed has none)."""
        since, records, cap = d.get("since"), d.get("records"), d.get("cap")
        return cls([list(map(str, b)) for b in d.get("batches", [])], int(d.get("fetched", 0)),
                   int(d.get("matched", 0)), _watermark_of(d, None),
                   _watermark_of(since, since.get("version")) if isinstance(since, Mapping) else None,
                   tuple(map(str, d.get("notes", []))), records if isinstance(records, Mapping) else None,
                   parse_time(cap, "cap") if cap else None)


def _watermark_json(mark: Watermark, prefix: str) -> dict[str, Any]:
    """A watermark's stored keys."""
    return {f"{prefix}_at": mark.at.isoformat() if mark.at else None, f"{prefix}_ids": sorted(mark.ids),
            f"{prefix}_ahead": mark.ahead_json()}


def _watermark_of(d: Mapping[str, Any], version: Any) -> Watermark:
    """A watermark back from its stored keys."""
    at = parse_time(d["watermark_at"], "watermark_at") if d.get("watermark_at") else None
    ids = frozenset(map(str, d.get("watermark_ids", [])))
    return Watermark(at, ids, Watermark.ahead_of(d.get("watermark_ahead")),
                     int(version) if version is not None else None)


def make_plan(fetched: list[Record], looked_at: list[Record], matches: Callable[[Record], bool],
              since: Watermark, batch_size: int, cap: datetime | None = None) -> Plan:
    """Match, order and batch the records; the watermark covers every record fetched, matched or not,
    and never passes `cap` (the run's start less the skew)."""
    matched = sorted((r for r in looked_at if matches(r)), key=lambda r: (updated_at(r), record_id(r)))
    ids = [record_id(r) for r in matched]
    batches = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    return Plan(batches, len(fetched), len(matched), since.advanced(fetched, cap), since,
                records={rid: rec for rid, rec in zip(ids, matched, strict=True)}, cap=cap)
