"""When `make run`'s stack is ready: the API answers /health, a worker answers a ping, Flower answers.

The banner is printed only then, so it is the last thing on the console before the runs' own lines.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from models.settings import Settings

PING_TIMEOUT_S = 1.0


def http_answers(url: str, want_ok: bool) -> bool:
    """Whether `url` answers (200 when `want_ok`; any HTTP status otherwise, e.g. Flower's 401)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200 or not want_ok)
    except urllib.error.HTTPError:
        return not want_ok
    except OSError:
        return False


def worker_answers(settings: Settings) -> bool:
    """Whether at least one Celery worker answers a broadcast ping within PING_TIMEOUT_S."""
    from worker.celery_app import make_app

    app = make_app(settings)
    try:
        return bool(app.control.ping(timeout=PING_TIMEOUT_S))
    except Exception:  # broker not reachable yet: not ready
        return False
    finally:
        app.close()


def wait_ready(settings: Settings, stop: threading.Event, dead: Callable[[], bool],
               timeout_s: float) -> list[str]:
    """Poll the API, a worker and Flower until all answer; what is still not ready ([] when all are)."""
    checks: dict[str, Callable[[], bool]] = {
        "the API (/health)": lambda: http_answers(f"http://127.0.0.1:{settings.api_port}/health", True),
        "a worker (Celery ping)": lambda: worker_answers(settings),
        "Flower": lambda: http_answers(f"http://127.0.0.1:{settings.flower_port}/healthcheck", False),
    }
    pending = dict(checks)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline and not stop.is_set() and not dead():
        for name, check in list(pending.items()):
            if check():
                del pending[name]
        if pending:
            stop.wait(0.5)
    return list(pending)
