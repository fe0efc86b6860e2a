"""`automation-worker explain AUTOMATION [--records FILE] [--criteria FILE] [--limit N]`: the explain
answer (tasks/explain.py, as POST .../explain gives it) as a table, one line per record, failing rules
named. Bad input exits 2 naming the field; a failing integration API exits 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.errors import FAILURE, CliError, DefinitionError, FieldError, IntegrationError
from models.schemas.explain import DEFAULT_LIMIT, MAX_LIMIT, ExplainRequest

SHOWN_CHARS = 40  # a value longer than this is cut in the table (--json shows it whole)


def add_explain_parser(sub: Any) -> None:
    """The `explain` subcommand."""
    p = sub.add_parser("explain", help="why an automation would (not) send records, rule by rule",
                       description="What the next run would decide on the records it would fetch (or "
                       "those in --records), with each failing rule named; --criteria tries a draft of "
                       "additional_criteria_details beside the stored criteria. Never invokes, never moves "
                       "the watermark, never records a run.")
    p.add_argument("automation", metavar="AUTOMATION", help="the automation's UUID or code")
    p.add_argument("--connection", metavar="UUID", help="the connection, when a code is on several")
    p.add_argument("--records", metavar="FILE", type=Path,
                   help="a JSON list of records (or {\"records\": [...]}) to explain instead of fetching")
    p.add_argument("--criteria", metavar="FILE", type=Path,
                   help="a draft: a JSON list of criteria groups (or {\"additional_criteria_details\": ...})")
    p.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT,
                   help=f"at most this many records (1..{MAX_LIMIT}, default {DEFAULT_LIMIT})")
    p.add_argument("--json", action="store_true", help="print the answer as POST .../explain gives it")
    p.set_defaults(handler=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain, then print the table (or the JSON answer)."""
    from models.db import session_scope
    from models.errors import BudgetExceeded
    from tasks.explain import answer_json, explain
    from worker.cli.operations import find_automation

    request = _request(args.records, args.criteria, args.limit)
    with session_scope() as session:
        automation = find_automation(session, args.automation, args.connection)
        label, provider = f"{automation.code} ({automation.uuid})", automation.connection.provider
        try:
            answer = explain(automation, request)
        except BudgetExceeded as exc:
            raise CliError(exc.reason, FAILURE) from None
        except IntegrationError as exc:
            raise CliError(f"the {provider} integration API failed: {exc}", FAILURE) from None
    if args.json:
        print(answer_json(answer))
    else:
        print_table(label, answer)
    return 0


def print_table(label: str, answer: dict[str, Any]) -> None:
    """A header (criteria, counts, the verdict of the run), then one line per record."""
    draft = any(r["stored_matched"] is not None for r in answer["records"])
    print(f"automation {label}: {'draft ' if draft else ''}criteria {answer['trigger_condition_text']}")
    print(_summary(answer))
    columns = ["ID", "MATCHED", *(["STORED"] if draft else []), "FAILING RULES"]
    rows = [[_shown(r["id"]), _yes(r["matched"]), *([_yes(r["stored_matched"])] if draft else []),
             "; ".join(_failing(r)) or "-"] for r in answer["records"]]
    widths = [max([len(c), *(len(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    for row in [columns, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _summary(answer: dict[str, Any]) -> str:
    """The counts and whether the next run would invoke."""
    batches = answer["batches"]
    verdict = (f"would invoke the partner function in {batches} batch{'es' if batches != 1 else ''}"
               if answer["would_invoke"] else "would invoke nothing")
    if answer["skip_reason"]:
        verdict += f" (the run would be skipped: {answer['skip_reason']})"
    return (f"{answer['records_examined']} {answer['source']} record(s) examined, "
            f"{answer['records_matched']} matched, ignore_threshold {answer['ignore_threshold']}: {verdict}")


def _failing(record: dict[str, Any]) -> list[str]:
    """Each rule that did not match, named by its place (g1.r2), field, operator and value, with the value
    it saw."""
    out = []
    for i, group in enumerate(record["groups"], start=1):
        for j, rule in enumerate(group["rules"], start=1):
            if not rule["matched"]:
                seen = "missing" if rule["missing"] else f"actual {_shown(rule['actual'])}"
                value = "" if rule["value"] is None else f" {_shown(rule['value'])}"
                out.append(f"g{i}.r{j} {rule['field_name']} {rule['operator']}{value} ({seen})")
    return out


def _shown(value: Any) -> str:
    """A value as JSON, cut to SHOWN_CHARS."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def _yes(flag: bool | None) -> str:
    """yes / no."""
    return "yes" if flag else "no"


def _request(records: Path | None, criteria: Path | None, limit: int) -> ExplainRequest:
    """The request from the files, validated as the API validates its body."""
    body: dict[str, Any] = {"limit": limit}
    if records is not None:
        data = _read(records, "--records")
        body["records"] = data.get("records") if isinstance(data, dict) else data
    if criteria is not None:
        data = _read(criteria, "--criteria")
        if isinstance(data, dict):
            inner = data.get("integration")
            data = (inner if isinstance(inner, dict) else data).get("additional_criteria_details")
        if data is None:
            raise DefinitionError("--criteria", f"{criteria}: holds no additional_criteria_details")
        body["additional_criteria_details"] = data
    try:
        return ExplainRequest.model_validate(body)
    except ValidationError as exc:
        errors = [FieldError(".".join(str(p) for p in e["loc"]) or "body", e["msg"]) for e in exc.errors()]
        raise DefinitionError(errors[0].field, errors[0].message, *errors[1:]) from None


def _read(path: Path, option: str) -> Any:
    """A JSON file's content; an unreadable file names its option."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DefinitionError(option, f"{path}: {exc}") from None


def _limit(value: str) -> int:
    """An argparse type: an integer in 1..MAX_LIMIT."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}")
    return number

