"""Fault 9 (issue 11, finding 4): two worker processes refresh one connection's expired token at once,
against an account server slower than the refresh lock used to live.

Before: the lock lived a fixed 30 s while the token POST may take connect + read; waiters gave up at 30 s,
took the freed lock and refreshed again with the same (rotated) refresh token, the provider answered
invalid_grant, and a healthy connection was flagged "needs reconnection". Here the token endpoint answers
in 31 s (the read timeout raised to 35 s so the POST itself succeeds: in production a slow connect adds
the same), rotating refresh tokens as real providers do; nothing is scaled, the race is the real one.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import redis
from sqlalchemy.orm import Session

from models.automation import Automation
from models.settings import get_settings
from tasks.enqueue import enqueue_run
from tests.faults.support import fault_env, log_dir, logs, runs_of, unfinished, wait_for
from tests.support import processes
from tests.support.integration_server import IntegrationServer
from tests.support.run_helpers import REFRESH_TOKEN, definitions, fresh, record, slot

AUTOMATIONS = 8  # on one connection; two workers of two processes each run four at once
RECORDS = ["r0", "r1", "r2"]  # two invoke batches per run (the suite's INVOKE_BATCH_SIZE=2)
TOKEN_DELAY_S = 31.0  # longer than the old fixed 30 s refresh lock
ENV = {"HTTP_READ_TIMEOUT_S": "35", "HTTP_CONNECT_TIMEOUT_S": "2"}


def test_two_workers_refresh_an_expired_token_once_against_a_slow_account_server(
        db: Session, server: IntegrationServer, queues: redis.Redis, started: list, tmp_path: Path) -> None:
    server.set_records("supplier", [record(rid, i) for i, rid in enumerate(RECORDS)])
    server.require_tokens({"not-the-stored-one"}, refresh=REFRESH_TOKEN)  # 401 until refreshed
    server.set_token_delay(TOKEN_DELAY_S)
    first = definitions(db, server)
    autos: list[Automation] = [first] + [
        definitions(db, server, connection=first.connection, pf=first.partner_function)
        for _ in range(AUTOMATIONS - 1)]
    ids = {a.id: a.uuid for a in autos}
    env, logs_at = fault_env(**ENV), log_dir(tmp_path)
    workers = [processes.start_worker(env, f"worker-{n}", 2, logs_at) for n in range(2)]
    started.extend(workers)
    the_slot = slot()
    began = time.monotonic()
    for auto in autos:
        enqueue_run(auto.uuid, the_slot)

    wait_for(lambda: server.state.tokens_in_flight or server.state.refreshes, 60,
             lambda: f"no token request\n{logs(workers)}")
    first_post_s = time.monotonic() - began

    def all_finished() -> bool:
        runs = runs_of(db, ids)
        return len(runs) == AUTOMATIONS and not unfinished(runs)

    wait_for(all_finished, TOKEN_DELAY_S + 90, lambda: f"unfinished: {unfinished(runs_of(db, ids))} of "
             f"{len(runs_of(db, ids))} rows\n{logs(workers)}")
    took_s = time.monotonic() - began
    # A second token POST (the old race) would still be in flight: wait for it, it decides the outcome.
    wait_for(lambda: not server.state.tokens_in_flight, TOKEN_DELAY_S + 10,
             lambda: f"a token request is still in flight\n{logs(workers)}")
    runs = runs_of(db, ids)
    conn = fresh(db, first.connection)
    failed = [(ids[r.automation_id], r.status, r.reason, r.error) for r in runs if r.status != "succeeded"]
    assert not failed, f"runs that did not succeed: {failed}\n{logs(workers)}"
    assert conn.needs_reconnect is False, logs(workers)
    at_once = server.state.max_tokens_in_flight
    assert at_once == 1, f"token requests in flight at once: {at_once}\n{logs(workers)}"
    assert (server.state.refreshes, server.state.refresh_successes) == (1, 1), (
        f"token requests {server.state.refreshes}, successful {server.state.refresh_successes}, refresh "
        f"tokens used {server.state.refresh_tokens_used}\n{logs(workers)}")
    key = get_settings().secret_key
    assert (conn.secret("access_token", key), conn.secret("refresh_token", key)) == ("access-1", "refresh-1")
    _assert_each_record_applied_once_per_run(server, {r.uuid for r in runs})
    waited = sum(1 for inv in server.invocations() if inv.authorization == "Bearer access-1")
    print(f"\nfault 9: {AUTOMATIONS} runs of one connection on 2 workers x 2 processes, token endpoint "
          f"{TOKEN_DELAY_S:.0f} s: first token POST after {first_post_s:.1f} s, 1 token POST (1 success), "
          f"needs_reconnect false, all {len(runs)} runs succeeded in {took_s:.1f} s, "
          f"{waited} invoke calls with the refreshed token, 0 records applied twice")


def _assert_each_record_applied_once_per_run(server: IntegrationServer, run_uuids: set[str]) -> None:
    """By content, across every Idempotency-Key the partner applied: each record once per run."""
    with server.state.lock:
        applied = list(server.state.applied.items())
    per_run: dict[str, Counter[str]] = {}
    for key, inv in applied:
        run_uuid = key.split(":", 1)[0]
        per_run.setdefault(run_uuid, Counter()).update(str(r["id"]) for r in inv.body.get("records", []))
    assert set(per_run) == run_uuids, f"applied for runs {set(per_run) ^ run_uuids} unexpectedly"
    wrong = {u: dict(c) for u, c in per_run.items() if c != Counter(RECORDS)}
    assert not wrong, f"records applied per run (expected each of {RECORDS} once): {wrong}"
