"""Chaos, short form of bench/chaos.py (issue 11): records that never stop changing, real workers and two
real beats, six SIGKILLs of workers and pool children and one of the beat leader within a minute; then
every record version is accounted for, per automation (tests/support/chaos_accounting.py).

20 automations, each with its own `applies_to` over one shared record store (tests/support/chaos_partner.py):
beat dispatches their '1 minute' slots, and the test enqueues a slot of each every CADENCE_S seconds (at
whole seconds + 0.5 s, never a beat slot), so each runs about ten times a minute. The run lock (3 s)
against redelivery (10 s) and the resume sweep (1 s) keep production's ratios, as the rest of the suite.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from sqlalchemy.orm import Session

from models import keys
from models.db import get_engine
from tasks.enqueue import enqueue_run
from tests.faults.support import fault_env, log_dir
from tests.support.chaos_accounting import WatermarkSampler, account, settled
from tests.support.chaos_partner import ChaosPartner, RecordStore
from tests.support.chaos_stack import Stack, plan_kills
from tests.support.factories import make_automation, make_connection, make_partner_function

AUTOMATIONS = 20
CHAOS_S = 60.0
CADENCE_S = 6.0
KILLS = {"group": 3, "child": 3, "beat": 1}
SKEW_S = 2.0
SETTLE_S = 60.0
ENV = {"VISIBILITY_TIMEOUT_S": "10", "RUN_LOCK_TTL_S": "3", "RESUME_SWEEP_S": "1",
       "WATERMARK_SKEW_S": str(SKEW_S), "INVOKE_BATCH_SIZE": "4", "FETCH_PAGE_SIZE": "8"}


def _automations(db: Session, partner: ChaosPartner) -> dict[int, str]:
    """AUTOMATIONS automations on two connections of the partner, one `applies_to` each; id → uuid."""
    conns = []
    for c in range(2):
        conn = make_connection(db, api_domain=partner.url, account_server=partner.url,
                               remote_instance_id=f"chaos-{c}")
        conns.append((conn, make_partner_function(db, conn, name=f"Chaos {c}")))
    out = {}
    for i in range(AUTOMATIONS):
        conn, pf = conns[i % 2]
        auto = make_automation(db, conn, pf, check_on="1 minute", custom_time=f"00:00:{3 * i % 60:02d}",
                               applies_to=f"supplier-{i}", code=f"chaos-{i}", name=f"Chaos {i}",
                               watermark_at=datetime.now(UTC) - timedelta(days=1))
        out[auto.id] = auto.uuid
    db.commit()
    return out


class Slots:
    """Enqueues a slot of automation i every CADENCE_S s, the automations spread over the cadence."""

    def __init__(self, uuids: list[str]) -> None:
        self.uuids = uuids
        self.began = time.monotonic()
        self.sent = [0] * len(uuids)

    def tick(self) -> None:
        elapsed = time.monotonic() - self.began
        for i, uuid in enumerate(self.uuids):
            due = 1 + int((elapsed - i * CADENCE_S / len(self.uuids)) // CADENCE_S)
            if due > self.sent[i]:
                self.sent[i] = due
                whole = datetime.now(UTC).replace(microsecond=0)
                enqueue_run(uuid, whole + timedelta(milliseconds=500))


def test_chaos_kills_lose_no_version_and_apply_none_twice(
        db: Session, queues: redis.Redis, tmp_path: Path) -> None:
    store = RecordStore(seed=11, initial=12, update_every_s=(4.0, 15.0), create_every_s=4.0)
    partner = ChaosPartner(store, (0.02, 0.1), seed=11).start()
    ids = _automations(db, partner)
    rng = random.Random(11)
    stack = Stack(fault_env(**ENV), log_dir(tmp_path), partner, queues, rng, pause_s=(0.5, 3.0), aim_s=3.0)
    planned = plan_kills(rng, KILLS, 4.0, CHAOS_S - 6.0)
    began = time.monotonic()
    try:
        stack.start()
        store.start(CHAOS_S + 2)
        slots = Slots(list(ids.values()))
        with WatermarkSampler(get_engine(), ids, 0.25) as sampler:
            while stack.elapsed() < CHAOS_S:
                stack.tick()
                slots.tick()
                if planned and stack.elapsed() >= planned[0].at_s:
                    stack.kill(planned.pop(0).kind)
                time.sleep(0.1)
            after = (store.stop() or datetime.now(UTC)) + timedelta(seconds=SKEW_S + 1)
            settle_began, ok, note = time.monotonic(), False, ""
            while not ok and time.monotonic() - settle_began < SETTLE_S:
                stack.tick()
                slots.tick()
                ok, note = settled(get_engine(), ids, after)
                ok = ok and not stack.restarts_pending()
                time.sleep(0.2)
            assert ok, f"not settled within {SETTLE_S:.0f} s: {note}\n{stack.tails()}"
            stack.stop_beats()
            assert _drained(queues, 40), f"the run queue did not drain\n{stack.tails()}"
        sweeps, errors = stack.sweeps(), stack.unexpected_errors()
        stack.stop_all()
        tally = account(get_engine(), partner, ids, SKEW_S)
    finally:
        stack.stop_all()
        store.stop()
        partner.stop()
    evidence = "\n".join(f"{name}: {lines[:10]}" for name, lines in tally.violations().items() if lines)
    assert not evidence, f"{evidence}\n{stack.tails()}"
    assert sampler.regressions == [], sampler.regressions
    kinds = [k.kind for k in stack.kills]
    assert len(kinds) == sum(KILLS.values()) and "beat" in kinds, stack.kills
    takeover = [k.takeover_s for k in stack.kills if k.kind == "beat"]
    assert takeover[0] is not None and takeover[0] <= 10, stack.kills
    assert tally.resumed >= 1, f"no kill left a run to resume: {stack.kills}"
    assert tally.statuses["succeeded"] >= 5 * AUTOMATIONS, tally.statuses
    print(f"\nchaos: {len(kinds)} SIGKILLs ({', '.join(f'{k} {kinds.count(k)}' for k in KILLS)}; "
          f"{sum(k.mid_invoke for k in stack.kills)} mid-invoke), {tally.runs} runs {dict(tally.statuses)}, "
          f"{tally.resumed} resumed, {sweeps} resume-sweep dispatches, {tally.versions} versions of "
          f"{tally.records} records, {tally.required_versions} required: applied twice 0, never applied 0, "
          f"ambiguous {len(tally.ambiguous)} ({tally.ambiguous_fetched} fetched), unfinished 0, watermark "
          f"regressions 0, {len(errors)} ERROR records besides killed pool children, "
          f"{time.monotonic() - began:.0f} s")


def _drained(client: redis.Redis, timeout_s: float) -> bool:
    """The run queue and kombu's unacknowledged hash stay empty for 2 s (within `timeout_s`)."""
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if client.llen(keys.RUN_QUEUE) == 0 and client.hlen("unacked") == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 2:
                return True
        else:
            quiet_since = None
        time.sleep(0.2)
    return False
