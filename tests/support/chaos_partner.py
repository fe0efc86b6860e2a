"""A loopback partner whose records never stop changing: the chaos run's integration API (bench/chaos.py,
tests/faults/test_chaos.py).

One shared record store serves every object name, so each automation gets an `applies_to` of its own
("supplier-17") and every fetch says which automation asked, and when. A thread of the store updates
random records (new content, `updated_at` = now) and creates new ones at a steady rate, and keeps every
version of every record, so the accounting knows which version was current at any instant.

Fetches are served with a keyset cursor (after the last (updated_at, id) returned), as a sound API does:
an offset cursor over a list that changes between pages would skip records, a fault of the partner and
not of the worker. Invokes are recorded as tests/support/integration_server.py records them (every
request; the
first per Idempotency-Key is the one applied); each takes a short random time, part of it before the batch
is applied and part after (an answer that a kill may lose although the batch was applied), and the ones
in flight are known by the client's port, so a kill can be aimed at a process that is mid-run. A request
whose body is cut short (its client killed between the headers and the body) is dropped, as a real
server drops it: never recorded as applied.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.integration_server import IntegrationServer, Invocation, _Handler

#: Wall-clock bound of the updating thread whatever the caller asks (it also stops on `stop()`).
MAX_UPDATE_S = 3600.0


class RecordStore:
    """Records shared by every object name; `versions[id]` is every updated_at the record ever had."""

    def __init__(self, seed: int, initial: int, update_every_s: tuple[float, float] = (20.0, 90.0),
                 create_every_s: float = 10.0, max_records: int = 1000) -> None:
        self.rng = random.Random(seed)
        self.update_every_s = update_every_s
        self.create_every_s = create_every_s
        self.max_records = max_records
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[datetime]] = {}
        self.updates = 0
        self.creates = 0
        self.last_change: datetime | None = None
        self._due: list[tuple[float, str]] = []  # (monotonic deadline, id) of the next update of each record
        self._next_create = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for _ in range(initial):
            self._create(time.monotonic())

    # -- changes ---------------------------------------------------------------------------------------

    def start(self, max_s: float) -> RecordStore:
        """Change records in a thread for at most `max_s` seconds (and never past MAX_UPDATE_S)."""
        self._next_create = time.monotonic() + self.create_every_s
        self._thread = threading.Thread(target=self._run, args=(min(max_s, MAX_UPDATE_S),),
                                        name="chaos-record-updates", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> datetime | None:
        """Stop changing records; the time of the last change."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.lock:
            return self.last_change

    def _run(self, max_s: float) -> None:
        deadline = time.monotonic() + max_s
        while not self._stop.wait(0.05) and time.monotonic() < deadline:
            self.step(time.monotonic())

    def step(self, now: float) -> None:
        """Apply the updates and the creation that are due at monotonic time `now`."""
        while self._due and self._due[0][0] <= now:
            _, rid = heapq.heappop(self._due)
            self._update(rid, now)
        if now >= self._next_create and len(self.records) < self.max_records:
            self._create(now)
            self._next_create = now + self.create_every_s

    def _stamp(self, rid: str) -> datetime:
        """Now, strictly after the record's previous version (two versions never share an updated_at)."""
        at = datetime.now(UTC)
        earlier = self.versions.get(rid)
        if earlier and at <= earlier[-1]:
            at = earlier[-1] + timedelta(microseconds=1)
        return at

    def _create(self, now: float) -> None:
        with self.lock:
            rid = f"rec-{len(self.records) + 1:05d}"
            at = self._stamp(rid)
            self.records[rid] = {"id": rid, "created_at": at.isoformat(), "updated_at": at.isoformat(),
                                 "Name": f"Supplier {rid}", "AccountNumber": self._account(), "revision": 0}
            self.versions[rid] = [at]
            self.creates += 1
            self.last_change = at
        self._schedule(rid, now)

    def _update(self, rid: str, now: float) -> None:
        with self.lock:
            at = self._stamp(rid)
            rec = dict(self.records[rid])
            rec.update(updated_at=at.isoformat(), AccountNumber=self._account(), revision=rec["revision"] + 1)
            self.records[rid] = rec
            self.versions[rid].append(at)
            self.updates += 1
            self.last_change = at
        self._schedule(rid, now)

    def _schedule(self, rid: str, now: float) -> None:
        heapq.heappush(self._due, (now + self.rng.uniform(*self.update_every_s), rid))

    def _account(self) -> str:
        return "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))

    # -- reads -----------------------------------------------------------------------------------------

    def page(self, since: datetime | None, after: tuple[datetime, str] | None,
             limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Records changed at or after `since`, in (updated_at, id) order after the cursor `after`."""
        with self.lock:
            keyed = sorted((self.versions[rid][-1], rid) for rid in self.records)
            rows = [(at, rid) for at, rid in keyed
                    if (since is None or at >= since) and (after is None or (at, rid) > after)]
            chosen = rows[:limit]
            page = [dict(self.records[rid]) for _, rid in chosen]
        nxt = f"{chosen[-1][0].isoformat()}|{chosen[-1][1]}" if len(rows) > limit else None
        return page, nxt

    def history(self) -> dict[str, list[datetime]]:
        """A copy of every record's versions (their updated_at, oldest first)."""
        with self.lock:
            return {rid: list(at) for rid, at in self.versions.items()}

    def final_versions(self) -> dict[str, str]:
        """id → updated_at (as served) of every record's current version."""
        with self.lock:
            return {rid: str(rec["updated_at"]) for rid, rec in self.records.items()}


class ChaosPartner(IntegrationServer):
    """The loopback integration API of the chaos run: the shared changing store, random invoke delays."""

    def __init__(self, store: RecordStore, invoke_delay_s: tuple[float, float] = (0.02, 0.12),
                 seed: int = 0) -> None:
        super().__init__()
        self.store = store
        self.invoke_delay_s = invoke_delay_s
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.fetches: dict[str, list[float]] = defaultdict(list)  # object name → wall times of its fetches
        self.fetched: dict[str, set[tuple[str, str]]] = defaultdict(set)  # name → (id, updated_at) returned
        self.in_flight: dict[int, int] = defaultdict(int)  # client port → invokes in flight from it
        self.flight_lock = threading.Lock()
        self.port = int(self.httpd.server_address[1])
        self.httpd.RequestHandlerClass = type("ChaosHandler", (_ChaosHandler,),
                                              {"state": self.state, "partner": self})
        self.httpd.handle_error = self._handle_error  # type: ignore[method-assign]

    def start(self) -> ChaosPartner:
        """Serve in a background thread."""
        super().start()
        return self

    def _handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request resets its connection: expected here, not worth a traceback."""
        import sys
        import traceback

        if not isinstance(sys.exc_info()[1], ConnectionError):
            traceback.print_exc()

    def delays(self) -> tuple[float, float]:
        """(before applying, after applying) of one invoke."""
        with self.rng_lock:
            total = self.rng.uniform(*self.invoke_delay_s)
            split = self.rng.random()
        return total * split, total * (1 - split)

    def in_flight_ports(self) -> set[int]:
        """Client ports with an invoke in flight now."""
        with self.flight_lock:
            return {port for port, n in self.in_flight.items() if n > 0}

    def applied_by_automation(self) -> dict[str, list[tuple[str, str, str]]]:
        """automation uuid → (record id, updated_at, Idempotency-Key) of every record the partner applied
        (one invocation per Idempotency-Key; a version under two keys appears twice)."""
        out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        with self.state.lock:
            applied = list(self.state.applied.items())
        for key, inv in applied:
            auto = str((inv.body.get("automation") or {}).get("uuid"))
            for rec in inv.body.get("records", []):
                out[auto].append((str(rec["id"]), str(rec.get("updated_at")), key))
        return dict(out)


class _ChaosHandler(_Handler):
    """GET /objects/<any name> from the shared store (keyset cursor); invokes with random delays."""

    partner: ChaosPartner

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith("/objects/"):
            return super().do_GET()
        if self._planned_failure("objects", b"") or not self._authorized():
            return None
        name = unquote(parts.path.split("/")[2])
        query = parse_qs(parts.query)
        try:
            since_text = query.get("updated_since", [None])[0]
            since = datetime.fromisoformat(since_text) if since_text else None
            cursor = query.get("cursor", [None])[0]
            after = None
            if cursor:
                at_text, rid = cursor.split("|", 1)
                after = (datetime.fromisoformat(at_text), rid)
            limit = int(query.get("limit", ["100"])[0])
        except ValueError:
            return self._reply(400, {"error": "bad query"})
        page, nxt = self.partner.store.page(since, after, limit)
        with self.partner.flight_lock:
            self.partner.fetches[name].append(time.time())
            self.partner.fetched[name].update((str(r["id"]), str(r["updated_at"])) for r in page)
        return self._reply(200, {"records": page, "next_cursor": nxt})

    def _body(self) -> bytes:
        """The request body, all of it: a client killed after sending its headers (the worker sends the
        body in a second write) leaves a body shorter than its Content-Length. The base server would read
        that as `{}` and record the batch's Idempotency-Key as applied with no records, so the worker's
        resend under the same key would be answered `duplicate` and never applied; a real server drops
        such a request, and so does this one."""
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) < length:
            raise ConnectionAbortedError(f"request body cut short: {len(data)} of {length} bytes")
        return data

    def _invoke(self, payload: dict[str, Any]) -> None:
        """Apply the first invocation per Idempotency-Key, between two random waits."""
        if not isinstance(payload.get("records"), list) or not payload.get("automation"):
            return self._reply(400, {"error": "an invoke carries automation and records"})
        port = int(self.client_address[1])
        with self.partner.flight_lock:
            self.partner.in_flight[port] += 1
        try:
            before, after = self.partner.delays()
            with self.state.lock:
                self.state.invokes_started += 1
            time.sleep(before)
            inv = Invocation(self.headers.get("Idempotency-Key"), payload, self.headers.get("Authorization"),
                             time.time())
            with self.state.lock:
                self.state.invocations.append(inv)
                duplicate = inv.key in self.state.applied
                if not duplicate:
                    self.state.applied[inv.key or f"none-{len(self.state.invocations)}"] = inv
            time.sleep(after)
            self._reply(200, {"status": "duplicate" if duplicate else "accepted"})
        finally:
            with self.partner.flight_lock:
                self.partner.in_flight[port] -= 1
