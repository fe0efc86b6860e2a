"""Credentials at rest: Fernet encryption with keys derived from SECRET_KEY.

Only ciphertext is stored; a worker decrypts a credential at the moment it needs it. SECRET_KEY may list
several keys, comma-separated: the first encrypts, every one decrypts (MultiFernet), so a key is rotated by
putting the new one first, running `automation-worker rotate-credentials`, then dropping the old one.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from models.errors import CredentialError

_INFO = b"automation-worker/credentials/v1"


def secret_keys(secret_key: str) -> list[str]:
    """SECRET_KEY's keys: comma-separated, blanks dropped, in order (the first encrypts)."""
    return [key.strip() for key in secret_key.split(",") if key.strip()]


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> MultiFernet:
    """One MultiFernet per SECRET_KEY: a Fernet per key, each derived with HKDF so any length of secret
    gives a valid key; the first key encrypts, each decrypts."""
    keys = secret_keys(secret_key) or [secret_key]
    return MultiFernet([_one_fernet(key) for key in keys])


def _one_fernet(key: str) -> Fernet:
    """The Fernet of one key of SECRET_KEY."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt(plaintext: str | None, secret_key: str) -> str | None:
    """Ciphertext for a credential under the first key; None and "" stay as they are (nothing to hide)."""
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
        raise CredentialError() from exc


def rotate(ciphertext: str | None, secret_key: str) -> str | None:
    """The same credential encrypted under the first key (decrypted with whichever key can)."""
    if not ciphertext:
        return ciphertext
    try:
        return _fernet(secret_key).rotate(ciphertext.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError) as exc:
        raise CredentialError() from exc


def mask(plaintext: str | None) -> str | None:
    """What responses show of a credential: `****` and its last 4 characters."""
    if not plaintext:
        return plaintext
    return "****" + plaintext[-4:] if len(plaintext) > 4 else "****"
