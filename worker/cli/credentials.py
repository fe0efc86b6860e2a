"""`automation-worker rotate-credentials`: every stored credential re-encrypted with SECRET_KEY's first key.

The rotation procedure (docs/operations.md "Rotating SECRET_KEY"): give every service SECRET_KEY=new,old,
run this once, then SECRET_KEY=new. A credential no key decrypts fails the command with the reason and
changes nothing.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from models.settings import get_settings

log = logging.getLogger(__name__)


def add_rotate_parser(sub: Any) -> None:
    """`rotate-credentials` and its help."""
    p = sub.add_parser("rotate-credentials", help="re-encrypt every stored credential with SECRET_KEY's "
                       "first key", description="Re-encrypt every stored credential with the first key of "
                       "SECRET_KEY (comma-separated keys: the first encrypts, all decrypt). One transaction: "
                       "if any credential cannot be decrypted with the keys given, nothing is changed.")
    p.set_defaults(handler=cmd_rotate_credentials)


def cmd_rotate_credentials(args: argparse.Namespace) -> int:
    """Rotate in one transaction; one line of outcome, or one error line and exit status 1."""
    from models.crypto import secret_keys
    from models.db import session_scope
    from models.errors import FAILURE, CliError, UnreadableCredential
    from models.store.rotation import rotate_credentials

    settings = get_settings()
    try:
        with session_scope() as session:
            done = rotate_credentials(session, settings.secret_key)
    except UnreadableCredential as exc:
        log.error("rotate-credentials: %s; nothing was changed", exc)
        raise CliError(f"{exc}; nothing was changed (list the key that encrypted it in SECRET_KEY, after "
                       "the new one)", FAILURE) from None
    keys = len(secret_keys(settings.secret_key))
    print(f"re-encrypted {done.credentials} credentials of {done.connections} connections with the first of "
          f"{keys} SECRET_KEY key{'s' if keys != 1 else ''}"
          + (f" ({done.changed_meanwhile} refreshed meanwhile, already current)" if done.changed_meanwhile
             else ""))
    return 0
