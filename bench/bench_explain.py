"""Benchmark: explain's cost over the compiled predicate alone, on the seed 001 three-group criteria.

Run from the repository root: `.venv/bin/python bench/bench_explain.py [--records N] [--repeat R]`.
The criteria and records are bench_criteria.py's: the seed 001 shape, (g1) AND (g2: a OR b) OR
(g3: c AND d), on realistic supplier records of about 20 fields. Each row judges the same records, R
times, interleaved (so the machine's noise falls on all alike); the median is reported, with the ratio
to the compiled predicate alone (what a run pays) and the trace's cost per record: explain's median less
the predicate's, divided by the records.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_criteria import CRITERIA, make_records  # noqa: E402

from models.connection import Connection  # noqa: E402
from models.schemas.explain import ExplainResponse  # noqa: E402
from tasks.context import RunContext  # noqa: E402
from tasks.explain import answer_json, evaluate, parse_draft  # noqa: E402
from tasks.predicates import tolerant_predicate_for  # noqa: E402
from tasks.selection import Watermark  # noqa: E402

DRAFT = [{"group_condition": "AND", "rules": [
    {"field_name": "Addresses.0.City", "operator": "IN", "value": "Sydney, Perth", "condition": "AND"},
    {"field_name": "Balance", "operator": "GREATER_THAN", "value": 1000, "condition": "AND"}]}]


def context() -> RunContext:
    """A run context with the criteria and nothing else a pure evaluation reads."""
    return RunContext(
        automation_id=1, automation_uuid="bench", connection_id=1, applies_to="supplier",
        applies_to_function="all", since_last_look_up=False, ignore_threshold=1,
        do_not_over_write_latest_data=False, another_automation=None, additional_criteria=True,
        criteria=CRITERIA, since=Watermark(None), skip_reason=None, connection=cast(Connection, None),
        partner_function_uuid=None, partner_function_public={}, automation_public={})


def rows(records: list[dict[str, Any]]) -> list[tuple[str, Callable[[], Any]]]:
    """What each row times: the run's predicate alone, then explain with more and more of its answer."""
    ctx, draft = context(), parse_draft(DRAFT)
    predicate = tolerant_predicate_for(True, CRITERIA)
    return [
        ("compiled predicate alone (a run)", lambda: [r for r in records if predicate(r)]),
        ("explain: verdicts + trace", lambda: evaluate(ctx, records, "given")),
        ("explain: a draft beside the stored", lambda: evaluate(ctx, records, "given", draft)),
        ("explain + answer as JSON (the route's)", lambda: answer_json(evaluate(ctx, records, "given"))),
        ("... validated by the model (pydantic)",
         lambda: ExplainResponse.model_validate({"explain": evaluate(ctx, records, "given")})
         .model_dump_json()),
    ]


def main() -> int:
    """Time the rows interleaved; print medians, ratios and the trace's cost per record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args()
    records = make_records(args.records)
    table = rows(records)
    answer = evaluate(context(), records, "given")
    matched = sum(1 for r in records if tolerant_predicate_for(True, CRITERIA)(r))
    assert answer["records_matched"] == matched, "explain's verdicts are the run's"
    seconds: dict[str, list[float]] = {name: [] for name, _ in table}
    for _ in range(args.repeat):
        for name, call in table:
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    base = statistics.median(seconds[table[0][0]])
    print(f"criteria: {answer['trigger_condition_text']}")
    print(f"{len(records):,} records, {matched:,} matched; median of {args.repeat}, interleaved\n")
    for name, _ in table:
        median = statistics.median(seconds[name])
        per_record_us = (median - base) / len(records) * 1e6
        extra = "" if name == table[0][0] else f"  (+{per_record_us:6.2f} µs a record over the predicate)"
        print(f"{name:38} median {median * 1000:8.3f} ms  {median / base:7.1f}x{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
