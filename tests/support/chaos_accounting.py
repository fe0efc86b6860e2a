"""The chaos run's accounting: what the partner applied against what each automation's plans promised.

Per automation (each has its own `applies_to`, and every invoke body names it in `automation.uuid`):
- applied twice: a record version (id, updated_at) the partner applied more than once for the automation,
  over every Idempotency-Key (the partner applies the first request per key, so a version applied under
  two keys counts twice). Target 0.
- never applied: the succeeded runs' plans form a chain (each plan's `since` watermark is the previous
  plan's target, its version one more); a plan was made at plan time = plan["cap"] + WATERMARK_SKEW_S,
  right after its fetch. Every record version that was current at the plan time of any succeeded run of
  the automation must have been applied for that automation (by that run or an earlier one: a version
  current at a fetch is either after the plan's `since`, or was current at the previous fetch too). A
  version whose lifetime starts or ends within `band_s` of every plan time it was current at is
  "ambiguous" (it may have come between the fetch and the plan time) and reported apart. Target 0.
- final-state misses: after quiescence the final version of every record was applied exactly once for
  every automation. Target 0.
- unfinished: runs still queued, running or deferred. Target 0.
Also checked: the plan chain has no break, each succeeded run's applied batches hold exactly its plan's
record versions (one plan per run, completed as planned), and no applied batch belongs to an unknown run.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from models.automation import Automation
from models.run import FINISHED, Run
from tests.support.chaos_partner import ChaosPartner

UNFINISHED = ("queued", "running", "deferred")


@dataclass
class Tally:
    """Every figure of the chaos run's result table, with evidence for anything not at its target."""

    automations: int = 0
    records: int = 0
    versions: int = 0
    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    resumed: int = 0
    max_attempts: int = 0
    plans: int = 0
    applied_records: int = 0
    required_versions: int = 0
    applied_twice: list[str] = field(default_factory=list)
    never_applied: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    ambiguous_fetched: int = 0  # of the ambiguous: returned by a fetch of the automation all the same
    final_misses: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    chain_breaks: list[str] = field(default_factory=list)
    not_as_planned: list[str] = field(default_factory=list)
    strangers: list[str] = field(default_factory=list)

    def violations(self) -> dict[str, list[str]]:
        """Each promise with the evidence against it (empty lists when kept)."""
        return {"applied twice": self.applied_twice, "never applied": self.never_applied,
                "final-state misses": self.final_misses, "unfinished runs": self.unfinished,
                "plan chain breaks": self.chain_breaks, "runs not completed as planned": self.not_as_planned,
                "batches of unknown runs": self.strangers}


def parse(value: Any) -> datetime:
    """An ISO 8601 time as aware UTC."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _runs(engine: Engine, ids: Iterable[int]) -> list[Any]:
    query = (select(Run.automation_id, Run.uuid, Run.scheduled_for, Run.status, Run.attempts, Run.plan,
                    Run.started_at, Run.trigger).where(Run.automation_id.in_(list(ids))).order_by(Run.id))
    with engine.connect() as conn:
        return list(conn.execute(query))


def account(engine: Engine, partner: ChaosPartner, automations: dict[int, str], skew_s: float,
            band_s: float = 2.0) -> Tally:
    """The tally over every run of `automations` (id → uuid) and every invocation the partner received."""
    runs = _runs(engine, automations)
    with engine.connect() as conn:
        names = dict(conn.execute(select(Automation.id, Automation.applies_to)
                                  .where(Automation.id.in_(list(automations)))).all())
    history = partner.store.history()
    finals = partner.store.final_versions()
    applied = partner.applied_by_automation()
    t = Tally(automations=len(automations), records=len(history),
              versions=sum(len(v) for v in history.values()), runs=len(runs))
    plans = _tally_runs(t, runs, automations)
    known_runs = {run.uuid for run in runs}
    t.strangers = sorted({key for key_list in applied.values() for _rid, _at, key in key_list
                          if key.split(":", 1)[0] not in known_runs})
    _check_as_planned(t, plans, applied)
    skew = timedelta(seconds=skew_s)
    for aid, uuid in automations.items():
        mine = applied.get(uuid, [])
        t.applied_records += len(mine)
        counts = _check_twice(t, uuid, mine)
        applied_at = {(rid, parse(at)) for rid, at in counts}
        ordered = sorted(plans.get(aid, []), key=lambda p: int((p.get("since") or {}).get("version") or 0))
        _check_chain(t, uuid, ordered)
        times = [(parse(p["cap"]) + skew, p["run"]) for p in ordered if p.get("cap")]
        fetched = partner.fetched.get(names.get(aid, ""), set())
        _check_versions(t, uuid, history, applied_at, fetched, times, timedelta(seconds=band_s))
        for rid, at in sorted(finals.items()):
            if counts.get((rid, at), 0) != 1:
                t.final_misses.append(f"automation {uuid} record {rid} final version {at}: applied "
                                      f"{counts.get((rid, at), 0)} times")
    return t


def _tally_runs(t: Tally, runs: list[Any], automations: dict[int, str]) -> dict[int, list[dict[str, Any]]]:
    """Count statuses and attempts, list unfinished runs; the succeeded runs' plans per automation."""
    plans: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        t.statuses[run.status] += 1
        t.resumed += run.attempts > 1
        t.max_attempts = max(t.max_attempts, run.attempts or 0)
        if run.status in UNFINISHED:
            t.unfinished.append(f"automation {automations[run.automation_id]} run {run.uuid} slot "
                                f"{run.scheduled_for.isoformat()} {run.status} attempts {run.attempts}")
        if run.plan is None:
            continue
        t.plans += 1
        if run.status == "succeeded":
            plans[run.automation_id].append({"run": run.uuid, **run.plan})
        elif run.status in FINISHED:
            t.chain_breaks.append(f"run {run.uuid}: a stored plan ended {run.status}")
    return plans


def _check_as_planned(t: Tally, plans: dict[int, list[dict[str, Any]]],
                      applied: dict[str, list[tuple[str, str, str]]]) -> None:
    """Each succeeded run's batches, as applied under its keys, are exactly its plan's record versions."""
    by_run: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key_list in applied.values():
        for rid, at, key in key_list:
            by_run[key.split(":", 1)[0]].add((rid, at))
    for plan_list in plans.values():
        for plan in plan_list:
            records = plan.get("records")
            if not isinstance(records, dict):
                continue
            planned = {(str(rid), str(rec.get("updated_at"))) for rid, rec in records.items()}
            got = by_run.get(plan["run"], set())
            if got != planned:
                missing, extra = sorted(planned - got)[:5], sorted(got - planned)[:5]
                t.not_as_planned.append(f"run {plan['run']}: planned, not applied {missing}; "
                                        f"applied, not planned {extra}")


def _check_twice(t: Tally, uuid: str, mine: list[tuple[str, str, str]]) -> Counter[tuple[str, str]]:
    """How many times each version was applied for the automation; those applied more than once noted."""
    counts = Counter((rid, at) for rid, at, _ in mine)
    keys_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid, at, key in mine:
        keys_of[(rid, at)].append(key)
    for (rid, at), n in sorted(counts.items()):
        if n > 1:
            t.applied_twice.append(f"automation {uuid} record {rid} version {at}: applied {n} times, "
                                   f"keys {keys_of[(rid, at)]}")
    return counts


def _check_chain(t: Tally, uuid: str, ordered: list[dict[str, Any]]) -> None:
    """Each succeeded plan starts where the previous one led, one watermark version later."""
    for before, after in zip(ordered, ordered[1:], strict=False):
        since = after.get("since") or {}
        v0 = int((before.get("since") or {}).get("version") or 0)
        v1 = int(since.get("version") or 0)
        same = (_mark(since) == _mark(before))
        if v1 != v0 + 1 or not same:
            t.chain_breaks.append(f"automation {uuid}: run {after['run']} (since version {v1}, at "
                                  f"{since.get('watermark_at')}) does not follow run {before['run']} "
                                  f"(version {v0}, led to {before.get('watermark_at')})")


def _mark(d: dict[str, Any]) -> tuple[Any, ...]:
    """A stored watermark (instant, ids at it, versions ahead of it) in comparable form."""
    at = d.get("watermark_at")
    ahead = {str(rid): parse(when) for rid, when in (d.get("watermark_ahead") or {}).items()}
    return (parse(at) if at else None, sorted(map(str, d.get("watermark_ids") or [])), ahead)


def _check_versions(t: Tally, uuid: str, history: dict[str, list[datetime]],
                    applied_at: set[tuple[str, datetime]], fetched: set[tuple[str, str]],
                    times: list[tuple[datetime, str]], band: timedelta) -> None:
    """Every version current at one of the automation's plan times was applied for it; an ambiguous one
    says whether any fetch of the automation returned it (if none did, it was superseded before any run
    fetched it: DESIGN's exception)."""
    fetched_at = {(rid, parse(at)) for rid, at in fetched}
    required: dict[tuple[str, int], tuple[bool, datetime, str]] = {}
    for rid, versions in history.items():
        for plan_at, run in times:
            i = bisect.bisect_right(versions, plan_at) - 1
            if i < 0:
                continue  # created after this plan
            born = versions[i]
            ends = versions[i + 1] if i + 1 < len(versions) else None
            clear = plan_at - born >= band and (ends is None or ends - plan_at >= band)
            seen = required.get((rid, i))
            if seen is None or (clear and not seen[0]):
                required[(rid, i)] = (clear, plan_at, run)
    t.required_versions += len(required)
    for (rid, i), (clear, plan_at, run) in sorted(required.items()):
        at = history[rid][i]
        if (rid, at) in applied_at:
            continue
        was_fetched = (rid, at) in fetched_at
        line = (f"automation {uuid} record {rid} version {at.isoformat()} (superseded "
                f"{history[rid][i + 1].isoformat() if i + 1 < len(history[rid]) else 'never'}): current at "
                f"plan time {plan_at.isoformat()} of run {run}, never applied; "
                f"{'returned by a fetch of it' if was_fetched else 'no fetch of it returned it'}")
        if clear:
            t.never_applied.append(line)
        else:
            t.ambiguous.append(line)
            t.ambiguous_fetched += was_fetched


def settled(engine: Engine, ids: Iterable[int], after: datetime, need: int = 2) -> tuple[bool, str]:
    """Whether every automation has `need` runs started after `after` that ended succeeded or below
    threshold, and no run is unfinished; with what is missing."""
    ids = list(ids)
    done = (select(Run.automation_id, func.count())
            .where(Run.automation_id.in_(ids), Run.started_at > after,
                   Run.status.in_(("succeeded", "below_threshold")))
            .group_by(Run.automation_id))
    open_runs = select(func.count()).where(Run.automation_id.in_(ids), Run.status.in_(UNFINISHED))
    with engine.connect() as conn:
        counts = dict(conn.execute(done).all())
        unfinished = int(conn.execute(open_runs).scalar() or 0)
    short = [aid for aid in ids if counts.get(aid, 0) < need]
    return not short and unfinished == 0, f"{len(short)} automation(s) short of {need} runs after " \
        f"{after.isoformat()}, {unfinished} unfinished run(s)"


class WatermarkSampler:
    """Reads every automation's watermark every `interval_s` in a thread; keeps only the last value of each
    and any step back (version or instant), so an hour of sampling costs no memory."""

    def __init__(self, engine: Engine, ids: Iterable[int], interval_s: float = 0.25) -> None:
        self.engine = engine
        self.ids = list(ids)
        self.interval_s = interval_s
        self.last: dict[int, tuple[int, datetime | None]] = {}
        self.regressions: list[str] = []
        self.max_regression_s = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watermark-sampler", daemon=True)

    def __enter__(self) -> WatermarkSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sampling (bounded join)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        query = select(Automation.id, Automation.watermark_version, Automation.watermark_at).where(
            Automation.id.in_(self.ids))
        while not self._stop.wait(self.interval_s):
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(query).all()
            except Exception:  # a sample lost to a busy database is no evidence either way
                continue
            self.samples += 1
            for aid, version, at in rows:
                at = parse(at) if at is not None else None
                prev = self.last.get(aid)
                if prev is not None:
                    v0, a0 = prev
                    back_s = (a0 - at).total_seconds() if a0 is not None and at is not None else 0.0
                    if (version or 0) < v0 or (a0 is not None and at is None) or back_s > 0:
                        self.regressions.append(f"automation {aid}: ({v0}, {a0}) -> ({version}, {at})")
                        self.max_regression_s = max(self.max_regression_s, back_s)
                self.last[aid] = (version or 0, at)
