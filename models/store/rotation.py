"""Re-encrypt every stored credential under SECRET_KEY's first key (`automation-worker rotate-credentials`).

Each value is written with a compare-and-set on its old ciphertext: a token a worker refreshed meanwhile is
already under the first key and is left as the worker wrote it. Everything happens in the caller's one
transaction, so a credential no key decrypts changes nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import crypto
from models.connection import SECRET_FIELDS, Connection
from models.errors import CredentialError, UnreadableCredential


@dataclass
class Rotated:
    """What a rotation did."""

    connections: int = 0
    credentials: int = 0
    changed_meanwhile: int = 0


def rotate_credentials(session: Session, secret_key: str) -> Rotated:
    """Re-encrypt each non-empty credential column of each connection under the first key."""
    done = Rotated()
    rows = session.execute(select(Connection.id, Connection.uuid, *[
        getattr(Connection, column) for column in SECRET_FIELDS.values()])).all()
    for row in rows:
        done.connections += 1
        for index, (name, column) in enumerate(SECRET_FIELDS.items()):
            old = row[2 + index]
            if not old:
                continue
            try:
                new = crypto.rotate(old, secret_key)
            except CredentialError:
                raise UnreadableCredential(row.uuid, name) from None
            attribute = getattr(Connection, column)
            result = session.execute(update(Connection).where(Connection.id == row.id, attribute == old)
                                     .values({column: new}).execution_options(synchronize_session=False))
            done.credentials += 1
            done.changed_meanwhile += 1 - int(getattr(result, "rowcount", 1) or 0)
    return done
