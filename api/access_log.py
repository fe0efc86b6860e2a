"""The sandbox's requests stay out of the access log unless SANDBOX_ACCESS_LOG asks for them.

The demo automation calls /sandbox every minute, which is about 14 access lines a minute on `make run`'s
console that say nothing an operator needs; the sandbox records what it received (/sandbox/invocations).
"""

from __future__ import annotations

import logging

from models.settings import get_settings

ACCESS_LOGGER = "uvicorn.access"
SANDBOX_PREFIX = "/sandbox"


class DropSandboxRequests(logging.Filter):
    """Drop uvicorn access records whose path is the sandbox's (args: client, method, path, version,
    status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a sandbox request, True for anything else."""
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = args[2]
            return not (path == SANDBOX_PREFIX or path.startswith(SANDBOX_PREFIX + "/"))
        return True


def quiet_sandbox_access() -> None:
    """Install the filter on uvicorn's access logger (once), unless SANDBOX_ACCESS_LOG is true."""
    logger = logging.getLogger(ACCESS_LOGGER)
    present = [f for f in logger.filters if isinstance(f, DropSandboxRequests)]
    if get_settings().sandbox_access_log:
        for f in present:
            logger.removeFilter(f)
    elif not present:
        logger.addFilter(DropSandboxRequests())
