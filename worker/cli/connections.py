"""`automation-worker connections update`: new credentials for a connection, as the connection PATCH does.

The way back after a refused refresh token (invalid_grant): new tokens clear needs_reconnect, so the
connection's automations run again on their next slot; nothing else about the connection changes.
"""

from __future__ import annotations

import argparse
from typing import Any

from models.settings import get_settings

#: Option → the PATCH body's field.
FIELDS = {"access_token": "integration_access_token", "refresh_token": "integration_refresh_token",
          "client_secret": "integration_client_secret"}


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
    from models.schemas.connections import ConnectionUpdate
    from models.store.connections import update_connection
    from worker.cli.operations import find_connection_ref

    body = {field: getattr(args, option) for option, field in FIELDS.items() if getattr(args, option)}
    if not body:
        raise CliError("nothing to update: give --access-token, --refresh-token or --client-secret")
    with session_scope() as session:
        found = find_connection_ref(session, args.connection, args.provider)
        was_flagged = found.needs_reconnect
        connection = update_connection(session, found.uuid, ConnectionUpdate.model_validate(body),
                                       get_settings().secret_key)
        label = f"{connection.provider} {connection.remote_instance_id or ''}".strip()
        changed = ", ".join(option.replace("_", "-") for option in FIELDS if getattr(args, option))
        reconnected = was_flagged and not connection.needs_reconnect
    print(f"connection {connection.uuid} ({label}): stored a new {changed}"
          + ("; reconnected: its automations run again from their next slot" if reconnected else ""))
    return 0
