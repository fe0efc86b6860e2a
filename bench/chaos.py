"""Chaos run: 200 automations every minute over records that never stop changing, 20 random SIGKILLs of
workers, pool children and the beat leader in 10 minutes; then every version accounted for.

The stack: PostgreSQL (database `aw_bench_chaos`, created and dropped here), a redis-server of the run's
own (beat_common.private_redis), real `celery -A worker worker` processes (2, prefork -c 2) and two real
`celery -A worker beat` processes (leader and standby). Connections' api_domain is a loopback partner
(tests/support/chaos_partner.py) serving one shared record store under every object name; each automation has
its own `applies_to` ("supplier-17"), a '1 minute' schedule whose phase is spread over the minute by
custom_time (00:00:SS, SS = its index mod 60: about 3.3 slots due every second), since_last_look_up, no
criteria (every record matches). A thread of the partner updates every record every 20-90 s (new content,
updated_at = now) and creates one every 15 s.

Kills (tests/support/chaos_stack.py): 8 whole workers (process group), 8 single pool children, 4 beat leaders
(found by the Redis key aw:beat:leader), at random moments (one per 30 s share of the window), aimed at a
process with an invoke in flight when one shows within 5 s; what was killed is started again after 1-5 s.
Settings keep production's ratios: RUN_LOCK_TTL_S 5 against VISIBILITY_TIMEOUT_S 60 (30 s against 7,200 s
in production), RESUME_SWEEP_S 5, fast retries. After the window the updates stop; the stack runs until
every automation has two runs started after the last update + WATERMARK_SKEW_S and no run is unfinished
(bounded), then the beats stop, the queue drains (bounded) and the workers stop. The accounting is
tests/support/chaos_accounting.py: versions applied twice, never applied, final-state misses, unfinished runs.

Usage: .venv/bin/python bench/chaos.py [--automations 200] [--duration 600] [--kills 8,8,4] [--seed 11]
       [--snapshot HEAD] (writes bench/results/chaos.txt; --out - prints only)
With --snapshot the code under test is that commit's (git archive into a temporary folder), so edits in
the shared working tree during the run cannot change it mid-run.
Loopback only; every process it starts is stopped by its pid; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from beat_common import ROOT, fresh_database, private_redis

DB_NAME = "aw_bench_chaos"
CHAOS_ENV = {"VISIBILITY_TIMEOUT_S": "60", "RUN_LOCK_TTL_S": "5", "RESUME_SWEEP_S": "5",
             "WATERMARK_SKEW_S": "5", "RETRY_ATTEMPTS": "4", "RETRY_BASE_S": "0.1", "RETRY_CAP_S": "1",
             "HTTP_READ_TIMEOUT_S": "10", "HTTP_CONNECT_TIMEOUT_S": "3", "INVOKE_BATCH_SIZE": "20",
             "FETCH_PAGE_SIZE": "25", "LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}
SECRETS = {"SECRET_KEY": "chaos-bench-secret-key", "API_TOKEN": "chaos-bench-api-token"}


def define(url: str, partner_url: str, n: int, connections: int) -> dict[int, str]:
    """Migrate; `connections` connections on the partner, n automations spread over them, parked (not due
    until armed); id → uuid."""
    from sqlalchemy.orm import Session

    from models import migrate
    from models.db import make_engine
    from tests.support.factories import make_automation, make_connection, make_partner_function

    migrate.upgrade(url)
    engine = make_engine(url)
    parked = datetime.now(UTC) + timedelta(days=1)
    start = datetime.now(UTC) - timedelta(days=1)  # the first run of each sends every record
    out: dict[int, str] = {}
    with Session(engine) as db:
        conns = []
        for c in range(connections):
            conn = make_connection(db, api_domain=partner_url, account_server=partner_url,
                                   remote_instance_id=f"chaos-tenant-{c}")
            conns.append((conn, make_partner_function(db, conn, name=f"Chaos partner {c}")))
        for i in range(n):
            conn, pf = conns[i % connections]
            auto = make_automation(db, conn, pf, next_run_at=parked, check_on="1 minute",
                                   custom_time=f"00:00:{i % 60:02d}", applies_to=f"supplier-{i}",
                                   code=f"chaos-{i}", name=f"Chaos {i}", watermark_at=start)
            out[auto.id] = auto.uuid
        db.commit()
    engine.dispose()
    return out


def arm(url: str, client: redis.Redis) -> None:
    """Every automation's next_run_at := its first slot from now; beat is told (schedule generation)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from models import keys
    from models.automation import Automation
    from models.db import make_engine
    from models.scheduling import next_run_at

    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as db:
        for auto in db.scalars(select(Automation)):
            auto.next_run_at = next_run_at(auto, now)
        db.commit()
    engine.dispose()
    client.incr(keys.SCHEDULE_GENERATION)


def drain(client: redis.Redis, timeout_s: float) -> bool:
    """Wait until the run queue and kombu's unacknowledged hash stay empty for 3 s."""
    from models import keys

    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if client.llen(keys.RUN_QUEUE) == 0 and client.hlen("unacked") == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 3:
                return True
        else:
            quiet_since = None
        time.sleep(0.2)
    return False


def chaos(args: argparse.Namespace, db_url: str, redis_url: str, log_dir: Path) -> dict[str, Any]:
    """The whole run; the result as a dict (figures and evidence)."""
    from models.db import make_engine
    from models.settings import get_settings
    from tests.support import processes
    from tests.support.chaos_accounting import WatermarkSampler, account, settled
    from tests.support.chaos_partner import ChaosPartner, RecordStore
    from tests.support.chaos_stack import Stack, plan_kills

    os.environ.update(DATABASE_URL=db_url, REDIS_URL=redis_url, **SECRETS, **CHAOS_ENV)
    get_settings.cache_clear()
    rng = random.Random(args.seed)
    store = RecordStore(args.seed, args.records, (args.update_min, args.update_max), args.create_every)
    partner = ChaosPartner(store, (args.invoke_min, args.invoke_max), seed=args.seed).start()
    client = redis.Redis.from_url(redis_url)
    ids = define(db_url, partner.url, args.automations, args.connections)
    engine = make_engine(db_url)
    env = processes.celery_env(**CHAOS_ENV)
    stack = Stack(env, log_dir, partner, client, rng, args.workers, args.concurrency, 2)
    kinds = dict(zip(("group", "child", "beat"), map(int, args.kills.split(",")), strict=True))
    planned = plan_kills(rng, kinds, 20.0, args.duration - 20.0)
    skew = float(CHAOS_ENV["WATERMARK_SKEW_S"])
    began = time.time()
    try:
        stack.start()
        arm(db_url, client)
        store.start(args.duration + 5)
        with WatermarkSampler(engine, ids, 0.5) as sampler:
            pending = list(planned)
            deadline = time.monotonic() + args.duration
            while time.monotonic() < deadline:
                stack.tick()
                if pending and stack.elapsed() >= pending[0].at_s:
                    record = stack.kill(pending.pop(0).kind)
                    print(f"{stack.elapsed():6.1f} s  kill {record.kind}: {record.target}"
                          f"{' (mid-invoke)' if record.mid_invoke else ''} {record.note}", flush=True)
                time.sleep(0.1)
            last_change = store.stop() or datetime.now(UTC)
            settle_began = time.monotonic()
            after = last_change + timedelta(seconds=skew + 1)
            note = ""
            while time.monotonic() - settle_began < args.settle_timeout:
                stack.tick()
                ok, note = settled(engine, ids, after)
                if ok and not stack.restarts_pending():
                    break
                time.sleep(1.0)
            settle_s = time.monotonic() - settle_began
            print(f"settled in {settle_s:.0f} s: {note}", flush=True)
            stack.stop_beats()
            drained = drain(client, 120)
        sweeps = stack.sweeps()
        stack.stop_all()
        tally = account(engine, partner, ids, skew)
        if any(tally.violations().values()) or sampler.regressions:
            evidence(engine, partner, ids, tally, log_dir)
        errors = {text: stack.log_count(text) for text in
                  ("was left unfinished; completing it", "(redelivered)", "retry: Retry in",
                   "exited with 'signal 9 (SIGKILL)'", "was lost", "watermark not moved")}
        unexpected = stack.unexpected_errors()
        return {"began": datetime.fromtimestamp(began, UTC).isoformat(timespec="seconds"),
                "code": code_version(), "wall_s": time.time() - began, "args": vars(args),
                "kills": stack.kills, "sweeps": sweeps,
                "settle_s": settle_s, "settle_note": note, "drained": drained, "tally": tally,
                "sampler": sampler, "errors": errors, "unexpected": unexpected,
                "invocations": len(partner.invocations()),
                "keys": len(partner.state.applied), "updates": store.updates, "creates": store.creates,
                "fetches": sum(len(v) for v in partner.fetches.values()), "loadavg": os.getloadavg()}
    finally:
        stack.stop_all()
        store.stop()
        partner.stop()
        engine.dispose()
        client.close()


def evidence(engine: Any, partner: Any, ids: dict[int, str], tally: Any, log_dir: Path) -> None:
    """Before the database is dropped: the runs and invocations of every automation named in a violation,
    as JSON lines in the kept log folder."""
    from sqlalchemy import select

    from models.run import Run

    named = {aid for aid, uuid in ids.items()
             if any(uuid in line for lines in tally.violations().values() for line in lines)}
    with engine.connect() as conn, open(log_dir / "evidence.jsonl", "w") as out:
        for row in conn.execute(select(Run.__table__).where(Run.automation_id.in_(named)).order_by(Run.id)):
            out.write(json.dumps({"automation": ids[row.automation_id], **{
                k: row._mapping[k] for k in row._mapping}}, default=str) + "\n")
        for inv in partner.invocations():
            auto = (inv.body.get("automation") or {}).get("uuid")
            if auto in {ids[a] for a in named}:
                out.write(json.dumps({"invoke": inv.key, "at": inv.at, "automation": auto,
                                      "records": [(r["id"], r["updated_at"]) for r in inv.body["records"]]})
                          + "\n")


def table(r: dict[str, Any]) -> str:
    """The result table (markdown) and the evidence of anything off target."""
    t, a, kills = r["tally"], r["args"], r["kills"]
    by_kind = {k: [x for x in kills if x.kind == k] for k in ("group", "child", "beat")}
    takeovers = [x.takeover_s for x in by_kind["beat"] if x.takeover_s is not None]
    s = t.statuses
    rows = [
        ("set-up", f"{a['automations']} automations ('1 minute', phases spread by custom_time) on "
                   f"{a['connections']} connections; {a['workers']} workers × -c {a['concurrency']} "
                   "(prefork); 2 beats; PostgreSQL; private Redis", ""),
        ("chaos window", f"{a['duration']:.0f} s; then settle {r['settle_s']:.0f} s, queue drained: "
                         f"{r['drained']}", ""),
        ("records / versions", f"{t.records} records, {t.versions:,} versions ({r['updates']:,} updates, "
                               f"{r['creates']} created)", ""),
        ("kills", f"{len(kills)}: {len(by_kind['group'])} whole workers, {len(by_kind['child'])} pool "
                  f"children, {len(by_kind['beat'])} beat leaders; "
                  f"{sum(x.mid_invoke for x in kills)} of the worker kills mid-invoke", "20"),
        ("standby takeover after a leader kill", f"max {max(takeovers, default=float('nan')):.1f} s "
                                                 f"({len(takeovers)} measured)", "≤ 10 s"),
        ("runs", f"{t.runs:,}: succeeded {s['succeeded']:,}, below threshold {s['below_threshold']}, failed "
                 f"{s['failed']}, missed {s['missed']}, skipped {s['skipped']}", ""),
        ("runs resumed (attempts > 1)", f"{t.resumed} (max attempts {t.max_attempts})", ""),
        ("resume sweep dispatches", f"{r['sweeps']}", ""),
        ("partner", f"{r['fetches']:,} fetches, {r['invocations']:,} invokes, {r['keys']:,} keys applied, "
                    f"{t.applied_records:,} record versions applied", ""),
        ("versions required (current at a plan time)", f"{t.required_versions:,}", ""),
        ("versions applied twice", f"{len(t.applied_twice)}", "0"),
        ("versions never applied", f"{len(t.never_applied)}", "0"),
        ("ambiguous (born or superseded within 2 s of a plan time), not applied",
         f"{len(t.ambiguous)} ({len(t.ambiguous) - t.ambiguous_fetched} never returned by a fetch of their "
         "automation: superseded before any run fetched them)", "few"),
        ("final-state misses", f"{len(t.final_misses)}", "0"),
        ("runs left unfinished", f"{len(t.unfinished)}", "0"),
        ("plan chain breaks", f"{len(t.chain_breaks)}", "0"),
        ("succeeded runs not completed as planned", f"{len(t.not_as_planned)}", "0"),
        ("batches of unknown runs", f"{len(t.strangers)}", "0"),
        ("watermark regressions (sampled every 0.5 s)",
         f"{len(r['sampler'].regressions)} in {r['sampler'].samples:,} samples "
         f"(max {r['sampler'].max_regression_s:.3f} s)", "none"),
        ("log lines", "; ".join(f"\"{k}\" {v}" for k, v in r["errors"].items()), ""),
        ("ERROR log records other than Celery's report of a killed pool child",
         f"{len(r['unexpected'])}", "0"),
    ]
    lines = [f"Chaos run, {r['began']} ({r['wall_s'] / 60:.1f} min wall, load average at the end "
             f"{r['loadavg'][0]:.2f}), seed {a['seed']}, code {r['code']}", "",
             "| figure | measured | target |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {target} |" for name, value, target in rows]
    lines += ["", "Kills:"]
    lines += [f"  {k.at_s:6.1f} s  {k.kind:5s} {k.target}{' (mid-invoke)' if k.mid_invoke else ''}"
              f"{f', standby took over in {k.takeover_s:.1f} s' if k.takeover_s is not None else ''}"
              f"{' ' + k.note if k.note else ''}" for k in kills]
    for name, evidence in [*t.violations().items(), ("ambiguous", t.ambiguous),
                           ("watermark regressions", r["sampler"].regressions),
                           ("unexpected ERROR records", r["unexpected"])]:
        if evidence:
            lines += ["", f"{name} ({len(evidence)}):", *[f"  {e}" for e in evidence[:25]]]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--automations", type=int, default=200)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of updates and kills")
    parser.add_argument("--kills", default="8,8,4", help="whole workers, pool children, beat leaders")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--records", type=int, default=40, help="records at the start")
    parser.add_argument("--update-min", type=float, default=20.0, help="each record changes every min..max s")
    parser.add_argument("--update-max", type=float, default=90.0)
    parser.add_argument("--create-every", type=float, default=15.0, help="a new record every N s")
    parser.add_argument("--invoke-min", type=float, default=0.02,
                        help="the partner's time per invoke, min..max s")
    parser.add_argument("--invoke-max", type=float, default=0.15)
    parser.add_argument("--settle-timeout", type=float, default=360.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep-logs", action="store_true", help="keep the process logs (always kept when "
                        "a promise was broken)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chaos.txt"))
    parser.add_argument("--snapshot", metavar="REV", help="run the code of this commit (git archive), not "
                        "the working tree, which others may edit during the run")
    return parser.parse_args()


def from_snapshot(args: argparse.Namespace, argv: list[str]) -> int:
    """Run this benchmark from `git archive <rev>` unpacked in a temporary folder (the subprocesses get it
    as PYTHONPATH, ahead of the editable install), so that edits in the working tree during the quarter of
    an hour the run takes cannot change the code under test; the figures name the commit."""
    import subprocess

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", args.snapshot], check=True,
                            capture_output=True, text=True, timeout=30).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix="aw-bench-chaos-src-"))
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit], check=True,
                             capture_output=True, timeout=120).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True, timeout=120)
        rest, skip = [], False
        for arg in argv:
            if skip or arg.startswith("--snapshot"):
                skip = arg == "--snapshot"
                continue
            rest.append(arg)
        out = args.out if args.out == "-" else str(Path(args.out).resolve())
        budget_s = args.duration + args.settle_timeout + 900
        return subprocess.run([sys.executable, str(folder / "bench" / "chaos.py"), *rest, "--out", out],
                              cwd=folder, env={**os.environ, "CHAOS_COMMIT": commit},
                              timeout=budget_s).returncode
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def code_version() -> str:
    """The commit the run measured (the snapshot's, or the working tree's HEAD, marked when it differs)."""
    import subprocess

    if os.environ.get("CHAOS_COMMIT"):
        return os.environ["CHAOS_COMMIT"][:12]
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30).stdout.strip()[:12]
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def main() -> int:
    """Run, print the table, write it; exit 1 when a promise was broken."""
    args = parse_args()
    if args.snapshot:
        return from_snapshot(args, sys.argv[1:])
    folder = Path(tempfile.mkdtemp(prefix="aw-bench-chaos-"))
    with private_redis() as redis_url, fresh_database("postgresql", DB_NAME) as db_url:
        result = chaos(args, db_url, redis_url, folder)
    text = table(result)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text + "\n")
    broken = {k: len(v) for k, v in result["tally"].violations().items() if v}
    if result["sampler"].regressions:
        broken["watermark regressions"] = len(result["sampler"].regressions)
    if broken or args.keep_logs:
        print(f"process logs{' and evidence' if broken else ''} kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({"broken": broken}))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
