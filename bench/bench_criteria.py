"""Benchmark: compiled criteria vs plain closures, a naive JSON-walking evaluator and the rule-engine package.

Run from the repository root: `.venv/bin/python bench/bench_criteria.py [--records N] [--repeat R]`.
The criteria have the seed 001 shape, (g1) AND (g2: a OR b) OR (g3: c AND d), on realistic field names;
each evaluator filters the same deterministic records with a list comprehension, R times, interleaved;
the median (and best) run is reported as records per second. rule-engine is timed on a subset (it is
slow); every evaluator's match count is checked against the compiled predicate's on the same records.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.criteria import parse_criteria, reference_predicate  # noqa: E402

CRITERIA = [
    {"group_condition": "AND", "rules": [
        {"field_name": "Status", "operator": "EQUALS", "value": "ACTIVE", "condition": "AND"}]},
    {"group_condition": "OR", "rules": [
        {"field_name": "Email", "operator": "HAS_VALUE", "condition": "OR"},
        {"field_name": "Notes", "operator": "CONTAINS", "value": "vip", "condition": "AND"}]},
    {"group_condition": "AND", "rules": [
        {"field_name": "ContactID", "operator": "DOES_NOT_HAVE_VALUE", "condition": "AND"},
        {"field_name": "Country", "operator": "EQUALS", "value": "AU", "condition": "AND"}]},
]
RULE_ENGINE_TEXT = (
    "((Status != null and Status.as_lower == 'active')"
    " and ((Email != null and Email != '') or (Notes != null and 'vip' in Notes.as_lower)))"
    " or ((ContactID == null or ContactID == '') and (Country != null and Country.as_lower == 'au'))"
)
Predicate = Callable[[Mapping[str, Any]], bool]


def make_records(count: int, seed: int = 20240601) -> list[dict[str, Any]]:
    """Supplier-like records of about 20 fields, some missing, mixed case, deterministic."""
    rng = random.Random(seed)
    statuses = ["ACTIVE"] * 3 + ["Active", "active", "INACTIVE", "INACTIVE", "ARCHIVED", "PENDING", "DRAFT"]
    countries = ["AU", "au", "NZ", "US", "GB", "DE", "CA", "IN", "SG", "JP"]
    notes = ["Regular supplier", "VIP - handle with care", "net 30", "", None, "late payer", "vip", "email"]
    records = []
    for i in range(count):
        record: dict[str, Any] = {
            "id": f"rec-{i:07d}", "created_at": f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T08:00:00Z",
            "updated_at": "2024-10-01T00:00:00Z", "Name": f"Supplier {rng.randint(1, 99999)}",
            "Status": rng.choice(statuses), "Country": rng.choice(countries),
            "AccountNumber": f"{rng.randint(0, 36**6):06X}", "Phone": f"+61 4{rng.randint(0, 10**8):08d}",
            "Balance": round(rng.uniform(-500, 50000), 2), "Currency": rng.choice(["AUD", "USD", "NZD"]),
            "TaxNumber": str(rng.randint(10**10, 10**11)), "IsSupplier": rng.random() < 0.8,
            "IsCustomer": rng.random() < 0.3, "PaymentTerms": rng.choice(["NET30", "NET60", "COD"]),
            "Website": rng.choice([None, "https://example.com"]), "Tags": rng.sample(["a", "b", "c", "d"], 2),
            "Addresses": [{"City": rng.choice(["Sydney", "Perth", "Auckland"]), "Postcode": "2000"}],
            "Notes": rng.choice(notes), "Discount": rng.choice([0, 5, 10]),
        }
        roll = rng.random()
        if roll < 0.45:
            record["Email"] = f"ap{i}@example.com"
        elif roll < 0.75:
            record["Email"] = rng.choice(["", None])
        roll = rng.random()
        if roll < 0.6:
            record["ContactID"] = f"c-{rng.randint(0, 10**6)}"
        elif roll < 0.8:
            record["ContactID"] = rng.choice(["", None])
        records.append(record)
    return records


def naive_predicate(groups: list[dict[str, Any]]) -> Predicate:
    """The straightforward evaluator: interpret the stored JSON for every record, no compilation."""
    def rule_holds(rule: dict[str, Any], record: Mapping[str, Any]) -> bool:
        value, operator = record.get(rule["field_name"]), rule["operator"].upper()
        if operator == "HAS_VALUE":
            return value not in (None, "", [], {})
        if operator == "DOES_NOT_HAVE_VALUE":
            return value in (None, "", [], {})
        if value is None:
            return False
        if operator == "EQUALS":
            return str(value).casefold() == str(rule["value"]).casefold()
        if operator == "CONTAINS":
            return str(rule["value"]).casefold() in str(value).casefold()
        raise ValueError(operator)

    def chain(results: list[bool], connectors: list[str]) -> bool:
        runs, current = [], results[0]
        for connector, result in zip(connectors, results[1:], strict=False):
            if connector.upper() == "OR":
                runs.append(current)
                current = result
            else:
                current = current and result
        return any([*runs, current])

    def predicate(record: Mapping[str, Any]) -> bool:
        group_results = [chain([rule_holds(r, record) for r in g["rules"]],
                               [r["condition"] for r in g["rules"]]) for g in groups]
        return chain(group_results, [g["group_condition"] for g in groups])

    return predicate


def rule_engine_predicate() -> Predicate | None:
    """rule-engine's Rule for the same expression (missing fields read as null), if it is installed."""
    try:
        import rule_engine
    except ImportError:
        return None
    rule = rule_engine.Rule(RULE_ENGINE_TEXT, context=rule_engine.Context(default_value=None))
    return rule.matches  # type: ignore[no-any-return]


def measure(rows: list[tuple[str, Predicate, list[dict[str, Any]]]], repeat: int) -> dict[str, list[float]]:
    """Seconds per run of filtering each row's records, the evaluators interleaved so that noise from
    other processes on the machine falls on all of them alike."""
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    for _ in range(repeat):
        for name, predicate, records in rows:
            start = time.perf_counter()
            [r for r in records if predicate(r)]  # the worker's own filtering idiom
            seconds[name].append(time.perf_counter() - start)
    return seconds


def main() -> int:
    """Time every evaluator, check that they agree, print records/s and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--subset", type=int, default=20_000, help="records given to rule-engine")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records = make_records(args.records)
    subset = records[: args.subset]
    criteria = parse_criteria(CRITERIA)
    start = time.perf_counter()
    compiled = criteria.compile()
    compile_ms = (time.perf_counter() - start) * 1000
    print(f"criteria: {criteria.text}")
    print(f"records: {len(records):,} ({len(records[0])} fields), rule-engine subset: {len(subset):,}, "
          f"median of {args.repeat}; compile() took {compile_ms:.2f} ms\n")
    rows = [("compiled (models.criteria)", compiled, records),
            ("plain closures (fallback)", reference_predicate(criteria.groups), records),
            ("naive JSON walk", naive_predicate(CRITERIA), records)]
    engine = rule_engine_predicate()
    if engine is not None:
        rows.append(("rule-engine Rule.matches", engine, subset))
    seconds = measure(rows, args.repeat)
    best = len(records) / statistics.median(seconds[rows[0][0]])
    ok = True
    for name, predicate, recs in rows:
        rate, peak = len(recs) / statistics.median(seconds[name]), len(recs) / min(seconds[name])
        matched, expected = sum(1 for r in recs if predicate(r)), sum(1 for r in recs if compiled(r))
        ok = ok and matched == expected
        agree = "agrees" if matched == expected else f"MISMATCH (compiled: {expected})"
        print(f"{name:27} median {rate:>10,.0f}/s (best {peak:>10,.0f}/s)  compiled is {best / rate:6.1f}x "
              f" matched {matched:,}/{len(recs):,} ({matched / len(recs):.1%}) {agree}")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
