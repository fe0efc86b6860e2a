"""The chaos run's processes and its kills: real `celery -A worker worker` and `celery -A worker beat`
processes, SIGKILLed at planned moments and started again after a short random pause (bench/chaos.py,
tests/faults/test_chaos.py).

Three kinds of kill:
- `group`: a whole worker (its main process and its prefork children: SIGKILL to its process group,
  whose id is its pid), started again (a new worker of the same slot) after the pause;
- `child`: one prefork pool child (SIGKILL to that pid); its worker forks a new one itself;
- `beat`: the beat leader (the holder of the Redis key models.keys.BEAT_LEADER_LOCK, matched to a beat by
  the id its log announces), started again as a standby after the pause; the standby takes over.
A worker kill is aimed, where it can be, at a process with an invoke in flight (the partner knows the
client port of each; psutil says which process owns that port), so it lands mid-run; otherwise at a
random one. Only processes started here are signalled, each by its pid (or its own process group), and
every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

from models import keys
from tests.support import processes
from tests.support.chaos_partner import ChaosPartner

BEAT_ID_RE = re.compile(r"beat (\S+): database scheduler ready")
SWEEP_RE = re.compile(r"(\d+) run\(s\) left unfinished by a dead worker dispatched again")
KINDS = ("group", "child", "beat")
RECORD_RE = re.compile(r"\n(?=\[\d{4}-\d\d-\d\d )")  # a text log record starts "[2026-11-28 19:51:38,021: "
KILLED_CHILD = ("WorkerLostError", "exited with 'signal 9 (SIGKILL)'")


@dataclass(frozen=True)
class PlannedKill:
    """A kill `at_s` seconds into the chaos window."""

    at_s: float
    kind: str


@dataclass
class KillRecord:
    """A kill as done: what, whom, whether an invoke of the target was in flight, the standby's takeover."""

    kind: str
    at_s: float
    pid: int | None
    target: str
    mid_invoke: bool = False
    takeover_s: float | None = None
    note: str = ""


def plan_kills(rng: random.Random, kinds: dict[str, int], start_s: float, end_s: float) -> list[PlannedKill]:
    """`kinds` (kind → count) shuffled over [start_s, end_s): one kill per equal share of the window, at a
    random moment in the first 80 % of its share (so two kills are never closer than a fifth of a share)."""
    order = [kind for kind, n in kinds.items() for _ in range(n)]
    rng.shuffle(order)
    share = (end_s - start_s) / max(1, len(order))
    return [PlannedKill(start_s + i * share + rng.uniform(0, 0.8 * share), kind)
            for i, kind in enumerate(order)]


@dataclass
class Stack:
    """Workers and beats of one chaos run, by slot; every process ever started is in `started`."""

    env: dict[str, str]
    log_dir: Path
    partner: ChaosPartner
    client: redis.Redis
    rng: random.Random
    workers_n: int = 2
    concurrency: int = 2
    beats_n: int = 2
    pause_s: tuple[float, float] = (1.0, 5.0)
    aim_s: float = 5.0
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    beats: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    kills: list[KillRecord] = field(default_factory=list)
    _restarts: list[tuple[float, str, int]] = field(default_factory=list)
    _takeover: tuple[float, str | None, KillRecord] | None = None
    _names: int = 0
    _t0: float = field(default_factory=time.monotonic)

    # -- start and stop --------------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> None:
        """Every worker and beat, ready (workers' pools forked, one beat leading) within `timeout_s`."""
        self.workers = [self._worker() for _ in range(self.workers_n)]
        self.beats = [self._beat() for _ in range(self.beats_n)]
        ok = processes.wait_until(
            lambda: all(w is not None and "ready." in processes.log_of(w) for w in self.workers)
            and self.leader() is not None, timeout_s, interval_s=0.2)
        if not ok:
            raise RuntimeError(f"stack not ready in {timeout_s:.0f} s:\n{self.tails()}")
        self._t0 = time.monotonic()

    def _name(self, kind: str) -> str:
        self._names += 1
        return f"{kind}-{self._names:02d}"

    def _worker(self) -> subprocess.Popen[bytes]:
        proc = processes.start_worker(self.env, self._name("worker"), self.concurrency, self.log_dir)
        self.started.append(proc)
        return proc

    def _beat(self) -> subprocess.Popen[bytes]:
        proc = processes.start_beat(self.env, self._name("beat"), self.log_dir)
        self.started.append(proc)
        return proc

    def stop_beats(self) -> None:
        """Warm shutdown of every beat still running."""
        for i, proc in enumerate(self.beats):
            if proc is not None:
                processes.stop(proc, timeout_s=15)
                self.beats[i] = None

    def stop_all(self) -> None:
        """Stop every process started here that still runs (SIGTERM, then SIGKILL of its own group)."""
        self._restarts.clear()
        for proc in self.started:
            if proc.poll() is None:
                processes.stop(proc, timeout_s=20)
            else:
                processes.stop(proc, timeout_s=1)  # reaps what is left in its group (orphaned children)

    # -- the driver ------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the stack was ready."""
        return time.monotonic() - self._t0

    def tick(self) -> None:
        """Start again what is due to be started again; note the standby's takeover after a beat kill."""
        now = time.monotonic()
        for due in [r for r in self._restarts if r[0] <= now]:
            self._restarts.remove(due)
            _, kind, index = due
            if kind == "worker":
                self.workers[index] = self._worker()
            else:
                self.beats[index] = self._beat()
        if self._takeover is not None:
            killed_at, old, record = self._takeover
            holder = self._leader_id()
            if holder is not None and holder != old:
                record.takeover_s = now - killed_at
                self._takeover = None
            elif now - killed_at > 60:
                record.note = "no new leader within 60 s"
                self._takeover = None

    def restarts_pending(self) -> int:
        """Processes killed and not started again yet."""
        return len(self._restarts)

    def kill(self, kind: str) -> KillRecord:
        """One kill of `kind`, at once (a worker kill waits up to `aim_s` for a process mid-invoke)."""
        at_s = self.elapsed()
        record = self._kill_leader(at_s) if kind == "beat" else self._kill_worker(kind, at_s)
        self.kills.append(record)
        return record

    def _pause(self) -> float:
        return time.monotonic() + self.rng.uniform(*self.pause_s)

    def _kill_leader(self, at_s: float) -> KillRecord:
        processes.wait_until(lambda: self.leader() is not None, 15, interval_s=0.1)
        found = self.leader()
        if found is None:
            return KillRecord("beat", at_s, None, "-", note="no leader found within 15 s")
        index, proc = found
        old = self._leader_id()
        _kill_group(proc)
        self.beats[index] = None
        self._restarts.append((self._pause(), "beat", index))
        record = KillRecord("beat", at_s, proc.pid, f"beat leader {old}")
        self._takeover = (time.monotonic(), old, record)
        return record

    def _kill_worker(self, kind: str, at_s: float) -> KillRecord:
        busy = self._wait_busy()
        alive = [i for i, w in enumerate(self.workers) if w is not None and w.poll() is None]
        if not alive:
            return KillRecord(kind, at_s, None, "-", note="no worker alive")
        if busy:
            index, child = self.rng.choice(busy)
        else:
            index = self.rng.choice(alive)
            children = _children(self.workers[index])  # type: ignore[arg-type]
            child = self.rng.choice(children) if children else 0
        worker = self.workers[index]
        assert worker is not None
        if kind == "child" and child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
            return KillRecord(kind, at_s, child, f"pool child {child} of worker {worker.pid}", bool(busy))
        _kill_group(worker)
        self.workers[index] = None
        self._restarts.append((self._pause(), "worker", index))
        return KillRecord("group", at_s, worker.pid, f"worker {worker.pid} and its pool", bool(busy),
                          note="" if kind == "group" else "no pool child to kill: whole worker")

    def _wait_busy(self) -> list[tuple[int, int]]:
        """Pool children with an invoke in flight, polled for up to `aim_s` (empty if none came)."""
        deadline = time.monotonic() + self.aim_s
        while True:
            busy = self.busy()
            if busy or time.monotonic() >= deadline:
                return busy
            time.sleep(0.05)

    # -- what is running -------------------------------------------------------------------------------

    def busy(self) -> list[tuple[int, int]]:
        """(worker slot, pool child pid) of every child with an invoke in flight now."""
        ports = self.partner.in_flight_ports()
        if not ports:
            return []
        out = []
        for index, worker in enumerate(self.workers):
            if worker is None or worker.poll() is not None:
                continue
            for child in _children(worker):
                try:
                    conns = psutil.Process(child).net_connections(kind="tcp")
                except psutil.Error:
                    continue
                if any(c.raddr and c.raddr.port == self.partner.port and c.laddr.port in ports
                       for c in conns):
                    out.append((index, child))
        return out

    def _leader_id(self) -> str | None:
        value = self.client.get(keys.BEAT_LEADER_LOCK)
        return value.decode() if isinstance(value, bytes) else value

    def leader(self) -> tuple[int, subprocess.Popen[bytes]] | None:
        """(slot, process) of the beat holding the leader lock, None when none does (or it is not ours)."""
        holder = self._leader_id()
        if holder is None:
            return None
        for index, proc in enumerate(self.beats):
            if proc is not None and proc.poll() is None and beat_id(proc) == holder:
                return index, proc
        return None

    def sweeps(self) -> int:
        """Runs beat's resume sweep dispatched again, over every beat's log."""
        return sum(int(m) for proc in self.started if "beat" in _log_name(proc)
                   for m in SWEEP_RE.findall(processes.log_of(proc)))

    def log_count(self, text: str) -> int:
        """Lines containing `text` over every process's log."""
        return sum(processes.log_of(proc).count(text) for proc in self.started)

    def unexpected_errors(self) -> list[str]:
        """ERROR records of every log other than Celery's report of a pool child this run killed."""
        out = []
        for proc in self.started:
            for record in RECORD_RE.split(processes.log_of(proc)):
                if "ERROR/" in record[:80] and not any(k in record for k in KILLED_CHILD):
                    out.append(f"{_log_name(proc)}: {record.strip()[:300]}")
        return out

    def tails(self, n: int = 3000) -> str:
        """The end of every log (for failure messages)."""
        return "\n".join(f"--- {_log_name(p)} pid {p.pid}\n{processes.log_of(p)[-n:]}" for p in self.started)


def beat_id(proc: subprocess.Popen[bytes]) -> str | None:
    """The id a beat announced in its log ("beat <id>: database scheduler ready")."""
    match = BEAT_ID_RE.search(processes.log_of(proc))
    return match.group(1) if match else None


def _log_name(proc: subprocess.Popen[bytes]) -> str:
    path = processes._LOGS.get(proc.pid)
    return path.stem if path else "?"


def _children(proc: subprocess.Popen[bytes]) -> list[int]:
    """Pids of the worker's prefork pool children."""
    try:
        return [c.pid for c in psutil.Process(proc.pid).children()]
    except psutil.Error:
        return []


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its own group (its pgid is its pid: processes.py starts it in a session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
