"""`automation-worker`: the command line (migrate, import, list, trigger, preview, check, run the stack).

Bad input is a message on stderr and exit status 2; an unreachable service or a failed check is status 1.
No traceback for either.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from models.errors import FAILURE, USAGE_ERROR, AutomationWorkerError, CliError, DefinitionError
from models.logging_setup import configure_logging
from models.settings import get_settings


def positive(limit: int) -> Callable[[str], int]:
    """An argparse type: an integer in 1..limit."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
        if not 1 <= number <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
        return number

    return parse


def instant(value: str) -> datetime:
    """An argparse type: an ISO 8601 date-time (naive means UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not an ISO 8601 date-time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand with its options and help."""
    parser = argparse.ArgumentParser(
        prog="automation-worker", description="Scheduled automation execution worker: command line. "
        "Settings come from the environment (DATABASE_URL, REDIS_URL, API_TOKEN, SECRET_KEY, ...).")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the services' INFO log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_data_commands(sub)
    _add_ops_commands(sub)
    from worker.cli.connections import add_connections_parser
    from worker.cli.credentials import add_rotate_parser
    from worker.cli.explain import add_explain_parser
    from worker.stack.run import add_run_parser, add_worker_parser

    add_run_parser(sub)
    add_worker_parser(sub)
    add_rotate_parser(sub)
    add_connections_parser(sub)
    add_explain_parser(sub)
    return parser


def _add_data_commands(sub: Any) -> None:
    """migrate, import, automations list, runs list, trigger."""
    p = sub.add_parser("migrate", help="apply the database migrations (alembic upgrade head)",
                       description="Bring DATABASE_URL's schema to the newest migration.")
    p.set_defaults(handler=cmd_migrate)
    p = sub.add_parser("import", help="import seed JSON payloads (idempotent)",
                       description="Import connections, partner functions, automations and configuration "
                       "from seed JSON payloads; see docs/cli.md for the file format. One "
                       "transaction: on any error nothing is written.")
    p.add_argument("files", nargs="+", metavar="FILE", type=Path, help="JSON file(s), imported in order")
    p.add_argument("--connection", metavar="UUID", help="connection for documents that name none")
    p.add_argument("--update", action="store_true",
                   help="apply the payload to partner functions/automations that exist already")
    p.set_defaults(handler=cmd_import)
    p = sub.add_parser("automations", help="automations: list").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    q = p.add_parser("list", help="list automations", description="List automations, oldest first.")
    q.add_argument("--connection", metavar="UUID", help="only this connection's")
    q.add_argument("--status", help="ACTIVE or PAUSED")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(handler=cmd_automations_list)
    p = sub.add_parser("runs", help="runs: list").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    q = p.add_parser("list", help="an automation's runs, newest first",
                     description="An automation's runs, newest first.")
    _automation_arg(q)
    q.add_argument("--limit", type=positive(500), default=20, help="how many (1..500, default 20)")
    q.add_argument("--status", help="e.g. failed, skipped, succeeded")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(handler=cmd_runs_list)
    p = sub.add_parser("trigger", help="run an automation now (a manual run)",
                       description="Record a manual run and put it on the queue, as POST .../run does.")
    _automation_arg(p)
    p.set_defaults(handler=cmd_trigger)


def _automation_arg(parser: argparse.ArgumentParser) -> None:
    """AUTOMATION (UUID or code) and --connection to tell codes apart."""
    parser.add_argument("automation", metavar="AUTOMATION", help="the automation's UUID or code")
    parser.add_argument("--connection", metavar="UUID", help="the connection, when a code is on several")


def _add_ops_commands(sub: Any) -> None:
    """schedule preview, check."""
    p = sub.add_parser("schedule", help="schedules: preview").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    q = p.add_parser("preview", help="the next fire times of a check_on (no database needed)",
                     description="Print checkOnText and the next fire times, as if stored now.")
    q.add_argument("check_on", metavar="CHECK_ON", help="'8 hours', 'daily', 'customDayTime', cron, ...")
    q.add_argument("--day", help="custom_day: monday..sunday, or the day of month for monthly")
    q.add_argument("--time", help="custom_time: HH:MM or HH:MM:SS")
    q.add_argument("--tz", help="time_zone (IANA name; default DEFAULT_TIMEZONE)")
    q.add_argument("-n", "--count", type=positive(100), default=10, help="how many (1..100, default 10)")
    q.add_argument("--from", dest="start", type=instant, help="preview from this ISO 8601 time, not now")
    q.set_defaults(handler=cmd_schedule_preview)
    p = sub.add_parser("check", help="is the database reachable and migrated, is Redis reachable",
                       description="Exit 0 when the database and Redis answer and migrations are current.")
    p.set_defaults(handler=cmd_check)
    p = sub.add_parser("status", help="beat, queue, workers and the automations' health on one screen",
                       description="Beat's liveness, the run queue's length, the workers that answer a ping, "
                                   "and how many automations are in each health state (the late and failing "
                                   "ones listed). Exit 0 when beat is ok and none is late or failing.")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(handler=cmd_status)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the migrations and say where the database now is."""
    from models import migrate
    from worker.cli.operations import safe_url

    url = get_settings().database_url
    migrate.upgrade(url)
    current, _ = migrate.current_heads(url)
    print(f"database {safe_url(url)} is at revision {current} (head)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import every file in one transaction, then tell beat its schedule may have changed."""
    from models.db import session_scope
    from models.errors import DocumentError
    from worker.cli.importer import Importer

    settings = get_settings()
    try:
        with session_scope() as session:
            importer = Importer(session, settings, update=args.update)
            if args.connection:
                importer.use_connection(args.connection)
            for path in args.files:
                importer.import_file(path)
    except DocumentError as exc:
        raise CliError("\n".join(f"{exc.where}: {e.field}: {e.message}" for e in exc.errors)) from None
    for o in importer.outcomes:
        print(f"{o.kind:<17} {o.label:<40} {o.uuid}  {o.action}")
    _notify_beat(settings.redis_url)
    return 0


def _notify_beat(redis_url: str) -> None:
    """Best effort: beat re-reads due times at once (it also does every minute on its own)."""
    from models.notify import schedule_changed
    from models.redis_clients import client_for

    schedule_changed(client_for(redis_url, 2, 2, decode=False))


def cmd_automations_list(args: argparse.Namespace) -> int:
    """A table (or JSON lines) of automations."""
    from models.db import session_scope
    from worker.cli.operations import list_automations

    with session_scope() as session:
        rows = [_automation_row(a) for a in list_automations(session, args.connection, args.status)]
    _print_rows(rows, ("uuid", "code", "name", "status", "check_on", "next_run_at", "connection"), args.json)
    return 0


def _automation_row(a: Any) -> dict[str, Any]:
    """What `automations list` shows of one automation."""
    return {"uuid": a.uuid, "code": a.code, "name": a.name, "status": a.status, "check_on": a.check_on,
            "time_zone": a.time_zone, "next_run_at": _iso(a.next_run_at),
            "connection": f"{a.connection.uuid} ({a.connection.provider})"}


def cmd_runs_list(args: argparse.Namespace) -> int:
    """A table (or JSON lines) of an automation's newest runs."""
    from models.db import session_scope
    from tasks.render import run_public
    from worker.cli.operations import find_automation, list_runs

    with session_scope() as session:
        automation = find_automation(session, args.automation, args.connection)
        rows = [run_public(r, automation.uuid).model_dump() for r in
                list_runs(session, automation, args.limit, args.status)]
    if not rows and not args.json:
        print(f"no runs yet for automation {automation.code} ({automation.uuid})")
        return 0
    columns = ("uuid", "scheduled_for", "trigger", "status", "records_fetched", "records_matched",
               "records_sent", "duration_ms", "reason")
    _print_rows(rows, columns, args.json)
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    """Queue a manual run and say how to follow it."""
    from models.db import session_scope
    from models.errors import EnqueueError
    from worker.cli.operations import find_automation, trigger

    try:
        with session_scope() as session:
            automation = find_automation(session, args.automation, args.connection)
            run = trigger(session, automation, get_settings().redis_url)
    except EnqueueError as exc:
        raise CliError(str(exc), FAILURE) from None
    print(f"queued manual run {run.uuid} of automation {automation.code} ({automation.uuid})")
    print(f"follow it with: automation-worker runs list {automation.uuid}")
    return 0


def cmd_schedule_preview(args: argparse.Namespace) -> int:
    """checkOnText, then one fire time per line."""
    from worker.cli.operations import preview

    text, fires = preview(args.check_on, args.day, args.time, args.tz, args.count, args.start,
                          get_settings().default_timezone)
    print(text)
    for fire in fires:
        print(fire)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The operator's one screen (worker/cli/status.py)."""
    from worker.cli.status import show

    return show(get_settings(), args.json)


def cmd_check(args: argparse.Namespace) -> int:
    """One line per check; exit 1 if any failed."""
    from worker.cli.operations import check_all

    checks = check_all(get_settings())
    for c in checks:
        print(f"{c.name:<11} {'ok' if c.ok else 'FAILED':<7} {c.detail}")
    return 0 if all(c.ok for c in checks) else FAILURE


def _iso(value: datetime | None) -> str | None:
    """A stored (UTC) time as ISO 8601 with its offset."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _print_rows(rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    """JSON lines, or an aligned table of the given columns."""
    if as_json:
        for row in rows:
            print(json.dumps(row, default=str))
        return
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, turn every expected failure into a message and an exit status."""
    args = build_parser().parse_args(argv)
    configure_logging()
    if not args.verbose and args.command != "run":
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return int(args.handler(args))
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except DefinitionError as exc:
        return _fail("\n".join(f"{e.field}: {e.message}" for e in exc.errors), USAGE_ERROR)
    except AutomationWorkerError as exc:
        return _fail(str(exc), USAGE_ERROR)
    except DBAPIError as exc:
        return _fail(f"database error ({type(exc.orig).__name__}): {_first_line(exc.orig)}; is DATABASE_URL "
                     "right and migrated? (`automation-worker check`, `automation-worker migrate`)", FAILURE)
    except KeyboardInterrupt:
        return 130


def _first_line(exc: BaseException | None) -> str:
    """The first line of a driver's message, credentials masked."""
    from models.logging_setup import redact

    lines = str(exc or "").strip().splitlines()
    return redact(lines[0]) if lines else ""


def _fail(message: str, code: int) -> int:
    """Print the error on stderr and return the exit status."""
    print(f"automation-worker: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
