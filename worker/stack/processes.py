"""The processes of `automation-worker run`: each in its own process group, output prefixed, stopped by pid.

Stopping sends SIGTERM to each main process (so Celery shuts its pool down itself), then SIGKILL to each
process group still alive after a bounded wait: nothing the stack started outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

_print_lock = threading.Lock()


def say(line: str, stream: IO[str] | None = None) -> None:
    """Print one whole line, never interleaved with a child's output."""
    out = stream or sys.stdout
    with _print_lock:
        out.write(line if line.endswith("\n") else line + "\n")
        out.flush()


@dataclass
class Child:
    """One started service: its name (the output prefix), command and process."""

    name: str
    args: list[str]
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the main process is still alive."""
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Supervisor:
    """Starts children, notices one dying, stops them all."""

    env: dict[str, str]
    cwd: str
    children: list[Child] = field(default_factory=list)
    width: int = 7

    def start(self, name: str, args: list[str]) -> Child:
        """Spawn `args` in a new session with stdout+stderr piped through a prefixing thread."""
        proc = subprocess.Popen(args, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, args, proc)
        child.pump = threading.Thread(target=self._pump, args=(child,), name=f"pump-{name}", daemon=True)
        child.pump.start()
        self.children.append(child)
        return child

    def _pump(self, child: Child) -> None:
        """Copy the child's output to ours, each line prefixed with its name."""
        assert child.proc is not None and child.proc.stdout is not None
        prefix = f"{child.name:<{self.width}}| "
        for raw in iter(child.proc.stdout.readline, b""):
            say(prefix + raw.decode("utf-8", errors="replace").rstrip("\n"))
        child.proc.stdout.close()

    def first_exited(self) -> Child | None:
        """A child whose main process has ended, if any."""
        return next((c for c in self.children if not c.running), None)

    def wait(self, stop_requested: Callable[[], bool], poll_s: float = 0.5) -> Child | None:
        """Block until a stop is requested (None) or a child exits (that child)."""
        while not stop_requested():
            exited = self.first_exited()
            if exited is not None:
                return exited
            time.sleep(poll_s)
        return None

    def stop_all(self, grace_s: float = 6.0, kill_wait_s: float = 2.0) -> None:
        """SIGTERM every main process, SIGKILL every group after `grace_s`, reap, join the output pumps."""
        for child in self.children:
            if child.running:
                _signal_pid(child, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(c.running for c in self.children) and time.monotonic() < deadline:
            time.sleep(0.1)
        for child in self.children:
            _signal_group(child, signal.SIGKILL)  # the group: pool children and anything left behind
        for child in self.children:
            if child.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.proc.wait(timeout=kill_wait_s)
            if child.pump is not None:
                child.pump.join(timeout=kill_wait_s)

    def pids(self) -> list[int]:
        """The main pids of the running children."""
        return [c.proc.pid for c in self.children if c.proc is not None and c.running]


def _signal_pid(child: Child, sig: int) -> None:
    """Signal the child's main process only."""
    if child.proc is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.proc.pid, sig)


def _signal_group(child: Child, sig: int) -> None:
    """Signal the process group the child leads (its pgid is its pid: start_new_session), nothing else."""
    if child.proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.proc.pid, sig)
