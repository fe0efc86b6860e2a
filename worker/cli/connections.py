"""`automation-worker connections update`: new credentials for a connection, as the connection PATCH does.

The way back after a refused refresh token (invalid_grant): new tokens clear needs_reconnect, so the
connection's automations run again on their next slot; nothing else about the connection changes.
"""

from __future__ import annotations

import argparse
from typing import Any

from models.settings import get_settings

#: Option → the stored credential it renews.
OPTIONS = ("access_token", "refresh_token", "client_secret")


def add_connections_parser(sub: Any) -> None:
    """`connections update` and its options."""
    p = sub.add_parser("connections", help="connections: update").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    q = p.add_parser("update", help="store new credentials (reconnects after invalid_grant)",
                     description="Store new credentials for a connection, encrypted with SECRET_KEY, as "
                     "PATCH /api/v3/integration/{uuid} does. A new access or refresh token clears "
                     "needs_reconnect: the connection's automations run again from their next slot.")
    q.add_argument("connection", metavar="CONNECTION", help="the connection's UUID or remote_instance_id")
    q.add_argument("--provider", help="the provider, when the remote_instance_id is on several")
    q.add_argument("--access-token", help="the new access token")
    q.add_argument("--refresh-token", help="the new refresh token")
    q.add_argument("--client-secret", help="a new client secret")
    q.set_defaults(handler=cmd_connections_update)


def cmd_connections_update(args: argparse.Namespace) -> int:
    """Update in one transaction; one line saying what changed."""
    from models.db import session_scope
    from models.errors import CliError
    from models.store.credentials import store_credentials
    from worker.cli.operations import find_connection_ref

    given: dict[str, str | None] = {name: getattr(args, name) for name in OPTIONS if getattr(args, name)}
    if not given:
        raise CliError("nothing to update: give --access-token, --refresh-token or --client-secret")
    with session_scope() as session:
        connection = find_connection_ref(session, args.connection, args.provider)
        reconnected = store_credentials(connection, given, get_settings().secret_key)
        uuid, label = connection.uuid, f"{connection.provider} {connection.remote_instance_id or ''}".strip()
    changed = ", ".join(name.replace("_", "-") for name in given)
    print(f"connection {uuid} ({label}): stored a new {changed}"
          + ("; reconnected: its automations run again from their next slot" if reconnected else ""))
    return 0
