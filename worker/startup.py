"""The worker and beat refuse to start without their secrets (API_TOKEN, a SECRET_KEY of their own).

Checked when Celery starts either program (celeryd_init in the worker's main process before anything
connects, beat_init before beat's first tick), not when the app is imported: the API, the command line
and the tests import it too. The refusal is a message on stderr and exit status 78 (EX_CONFIG).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery.signals import beat_init, celeryd_init

from models.errors import ConfigurationError
from models.settings import require_secrets

log = logging.getLogger(__name__)
EX_CONFIG = 78


def refuse_without_secrets(service: str) -> None:
    """Exit the process with a clear message when `service` has no API token or the development key."""
    try:
        require_secrets(service)
    except ConfigurationError as exc:
        log.critical("%s", exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EX_CONFIG) from None  # a SystemExit passes through Celery's signal dispatch


@celeryd_init.connect(weak=False)
def check_worker_secrets(**_: Any) -> None:
    """The worker's main process, before it connects to the broker."""
    refuse_without_secrets("the worker")


@beat_init.connect(weak=False)
def check_beat_secrets(**_: Any) -> None:
    """Beat, before its first tick."""
    refuse_without_secrets("beat")
