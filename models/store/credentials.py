"""New credentials for a stored connection: what the connection PATCH and `automation-worker connections
update` both do. New tokens reconnect it: a connection flagged after a refused refresh (needs_reconnect)
runs its automations again."""

from __future__ import annotations

from models.base import utcnow
from models.connection import SECRET_FIELDS, Connection

#: The credentials whose renewal reconnects a connection.
TOKENS = frozenset({"access_token", "refresh_token"})


def store_credentials(connection: Connection, given: dict[str, str | None], secret_key: str) -> bool:
    """Encrypt each given credential (names of SECRET_FIELDS) under SECRET_KEY's first key; clear
    needs_reconnect when a token is among them. Whether the connection was reconnected."""
    unknown = set(given) - set(SECRET_FIELDS)
    if unknown:
        raise ValueError(f"not credentials: {sorted(unknown)}")
    for name, value in given.items():
        connection.set_secret(name, value, secret_key)
    reconnected = bool(connection.needs_reconnect and TOKENS & set(given))
    if TOKENS & set(given):
        connection.needs_reconnect = False
    connection.updated_at = utcnow()
    return reconnected
