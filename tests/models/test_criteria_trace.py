"""The explain trace never disagrees with the run: for any criteria and any record, the compiled predicate
the run uses (tasks/predicates) and the trace's groups combined by the documented precedence give the
same verdict, each group's verdict is its rules' combined, and the value shown is the value judged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models.criteria import OPERATORS, Criteria, parse_criteria
from models.criteria_trace import Tracer, combine, resolve, verdict
from tasks.predicates import tolerant_predicate_for

FIELDS = ["A", "B", "C", "A.0", "A.B", "A.0.B", "B.C", "Addresses.0.City"]
KEYS = ["A", "B", "C", "0", "City", "Addresses", "A.0", "B.C"]
PATTERNS = ["^a", "b$", "a.c", r"\d+", "A|B", "ß"]
TEXT = st.text(alphabet="abcABßK ,0123.-", min_size=1, max_size=6).filter(lambda s: s.strip() != "")
SCALAR_VALUE = st.one_of(TEXT, st.integers(-5, 100), st.floats(-10, 10, allow_nan=False), st.booleans(),
                         st.sampled_from(["2024-01-01", "2024-01-02T10:00:00Z", "1e3", "007"]))
RECORD_SCALAR = st.one_of(st.none(), st.just(""), SCALAR_VALUE, st.text(max_size=4))
RECORD_VALUE = st.recursive(RECORD_SCALAR, lambda children: st.lists(children, max_size=3)
                            | st.dictionaries(st.sampled_from(KEYS), children, max_size=3), max_leaves=6)
RECORDS = st.lists(st.dictionaries(st.sampled_from(KEYS), RECORD_VALUE, max_size=5), min_size=1, max_size=5)


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    """One valid rule: any operator, a value that suits it, either connector, maybe case-sensitive."""
    operator = draw(st.sampled_from(OPERATORS))
    out: dict[str, Any] = {"field_name": draw(st.sampled_from(FIELDS)), "operator": operator,
                           "condition": draw(st.sampled_from(["AND", "OR"])),
                           "case_sensitive": draw(st.booleans())}
    if operator == "MATCHES":
        out["value"] = draw(st.sampled_from(PATTERNS))
    elif operator in ("IN", "NOT_IN"):
        out["value"] = draw(st.lists(SCALAR_VALUE, min_size=1, max_size=3))
    elif operator not in ("HAS_VALUE", "DOES_NOT_HAVE_VALUE"):
        out["value"] = draw(SCALAR_VALUE)
    return out


CRITERIA = st.lists(st.fixed_dictionaries({"group_condition": st.sampled_from(["AND", "OR"]),
                                           "rules": st.lists(rules(), min_size=1, max_size=4)}),
                    min_size=1, max_size=4)


def reference(verdicts: Sequence[bool], connectors: Sequence[str]) -> bool:
    """The documented precedence written out: split at every OR, AND within each run, OR of the runs."""
    runs: list[list[bool]] = [[verdicts[0]]]
    for connector, item in zip(connectors, verdicts[1:], strict=False):
        if connector == "OR":
            runs.append([item])
        else:
            runs[-1].append(item)
    return any(all(run) for run in runs)


def has_value(actual: Any, missing: bool) -> bool:
    """HAS_VALUE as DESIGN words it: false for a missing field, null, "" and []."""
    return not missing and actual is not None and not (isinstance(actual, str | list | Mapping)
                                                       and len(actual) == 0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CRITERIA, RECORDS)
def test_the_trace_agrees_with_the_runs_predicate(groups: list[dict[str, Any]],
                                                  records: list[dict[str, Any]]) -> None:
    criteria = parse_criteria(groups, True)
    run_predicate = tolerant_predicate_for(True, criteria.to_list())
    tracer = Tracer(criteria)
    for record in records:
        trace = tracer.trace(record)
        expected = run_predicate(record)
        assert verdict(trace) is expected
        assert reference([g["matched"] for g in trace], [g["group_condition"] for g in trace]) is expected
        for group, parsed in zip(trace, criteria.groups, strict=True):
            rule_verdicts = [r["matched"] for r in group["rules"]]
            assert group["matched"] is reference(rule_verdicts, [r.condition for r in parsed.rules])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), RECORDS)
def test_the_value_shown_is_the_value_judged(field: str, records: list[dict[str, Any]]) -> None:
    has = Tracer(parse_criteria([{"rules": [{"field_name": field, "operator": "HAS_VALUE"}]}]))
    for record in records:
        (group,) = has.trace(record)
        (seen,) = group["rules"]
        assert seen["matched"] is has_value(seen["actual"], seen["missing"])
        assert (seen["actual"], seen["missing"]) == resolve(record, field)


@given(st.lists(st.booleans(), min_size=1, max_size=8), st.lists(st.sampled_from(["AND", "OR"]), max_size=8))
def test_combine_is_the_documented_precedence(verdicts: list[bool], connectors: list[str]) -> None:
    connectors = (connectors + ["AND"] * len(verdicts))[:len(verdicts)]
    assert combine(verdicts, connectors) is reference(verdicts, connectors)


def test_switched_off_or_empty_criteria_trace_nothing_and_match_everything() -> None:
    for criteria in (parse_criteria([{"rules": [{"field_name": "A", "operator": "HAS_VALUE"}]}], False),
                     Criteria((), True)):
        trace = Tracer(criteria).trace({"A": 1})
        assert trace == [] and verdict(trace) is True


def test_a_path_that_leads_nowhere_is_missing_and_a_null_is_not() -> None:
    record = {"A": [{"B": None}], "C": "text", "A.0": "whole key"}
    assert resolve(record, "A.0.B") == (None, False)
    assert resolve(record, "A.1.B") == (None, True)
    assert resolve(record, "C.0") == (None, True)
    assert resolve(record, "A.0") == ("whole key", False)
    assert resolve(record, "Z") == (None, True)
