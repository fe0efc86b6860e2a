"""Credentials at rest: Fernet encryption with a key derived from SECRET_KEY.

Only ciphertext is stored; a worker decrypts a credential at the moment it needs it.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from models.errors import CredentialError

_INFO = b"automation-worker/credentials/v1"


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    """One Fernet per SECRET_KEY, derived with HKDF so any length of secret gives a valid key."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt(plaintext: str | None, secret_key: str) -> str | None:
    """Ciphertext for a credential; None and "" stay as they are (nothing to hide)."""
    if not plaintext:
        return plaintext
    return _fernet(secret_key).encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str | None, secret_key: str) -> str | None:
    """The credential back, for the one place that needs it (a worker calling the integration API)."""
    if not ciphertext:
        return ciphertext
    try:
        return _fernet(secret_key).decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise CredentialError("stored credential cannot be decrypted with the current SECRET_KEY") from exc


def mask(plaintext: str | None) -> str | None:
    """What responses show of a credential: `****` and its last 4 characters."""
    if not plaintext:
        return plaintext
    return "****" + plaintext[-4:] if len(plaintext) > 4 else "****"
