"""Explain (DESIGN "Explain"): what the next run would decide on some records, and why, per group and rule.

Below the API, so that the route and the command line share it. It reads the automation, takes the
records given or fetches those the next run would (tasks/explain_fetch.py), and evaluates them with the
run's own predicate (tasks/predicates.py) beside the per-rule trace (models/criteria_trace.py). It never
invokes, never moves the watermark, never records a run; it logs one line, without record contents.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.automation import Automation
from models.criteria import Criteria, parse_criteria
from models.criteria_trace import Tracer
from models.errors import DefinitionError, FieldError
from models.schemas.explain import ExplainRequest
from models.settings import get_settings
from models.store.definitions import INTEGRATION, parse_definition_criteria
from tasks.context import RunContext, build_context
from tasks.explain_fetch import next_run_records
from tasks.predicates import TolerantPredicate, tolerant_predicate_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judge:
    """One set of criteria as a run applies them (the compiled predicate) and as explain traces them."""

    text: str
    predicate: TolerantPredicate
    tracer: Tracer

    @classmethod
    def of(cls, enabled: bool, groups: list[Any]) -> Judge:
        """From criteria in their stored form (validated)."""
        parsed = parse_criteria(groups, enabled)
        return cls(parsed.text, tolerant_predicate_for(enabled, groups), Tracer(parsed))

    def record(self, record: Mapping[str, Any], stored: Judge | None) -> dict[str, Any]:
        """One record's verdict (the run's), its groups' and rules' trace, the stored verdict beside."""
        return {"id": record.get("id"), "matched": self.predicate(record),
                "stored_matched": stored.predicate(record) if stored is not None else None,
                "groups": self.tracer.trace(record)}


def parse_draft(groups: Any) -> Criteria:
    """A criteria draft, validated and compiled as a PATCH does; each error names its field."""
    try:
        return parse_definition_criteria(groups, True)
    except DefinitionError as exc:  # named as in the explain body, not under a PATCH's `integration`
        fields = [FieldError(e.field.removeprefix(f"{INTEGRATION}."), e.message) for e in exc.errors]
        raise DefinitionError(fields[0].field, fields[0].message, *fields[1:]) from None


def explain(automation: Automation, request: ExplainRequest) -> dict[str, Any]:
    """The explain answer's object for the automation (loaded in the caller's session, which stays
    unwritten). Raises DefinitionError (a bad draft), IntegrationError or BudgetExceeded (fetching)."""
    ctx = build_context(automation)
    draft = None if request.additional_criteria_details is None else parse_draft(
        request.additional_criteria_details)
    if request.records is not None:
        records, source = request.records[:request.limit], "given"
    else:
        records, source = next_run_records(ctx, request.limit), "fetched"
    answer = evaluate(ctx, records, source, draft)
    log.info("explain automation %s: %d %s record(s) examined, %d matched%s", ctx.automation_uuid,
             answer["records_examined"], source, answer["records_matched"], " (a draft)" if draft else "")
    return answer


def evaluate(ctx: RunContext, records: Sequence[Mapping[str, Any]], source: str,
             draft: Criteria | None = None) -> dict[str, Any]:
    """Judge the records with the draft (and the stored criteria beside it) or the stored criteria."""
    stored = Judge.of(ctx.additional_criteria, ctx.criteria)
    judge = stored if draft is None else Judge.of(True, draft.to_list())
    verdicts = [judge.record(r, stored if draft is not None else None) for r in records]
    matched = sum(1 for v in verdicts if v["matched"])
    batches = math.ceil(matched / get_settings().invoke_batch_size)
    would_invoke = ctx.skip_reason is None and matched >= ctx.ignore_threshold and batches > 0
    return {"trigger_condition_text": judge.text, "source": source, "records_examined": len(verdicts),
            "records_matched": matched, "ignore_threshold": ctx.ignore_threshold,
            "would_invoke": would_invoke, "batches": batches, "skip_reason": ctx.skip_reason,
            "records": verdicts}


def answer_json(answer: Mapping[str, Any]) -> str:
    """`{"explain": answer}` as JSON text (a plain dump: no model to validate a thousand records against);
    a non-finite number a partner sent (NaN, Infinity) is shown as its text."""
    body = {"explain": answer}
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(body), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _finite(value: Any) -> Any:
    """The value with every non-finite float replaced by its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
