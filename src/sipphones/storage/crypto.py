"""SIP passwords at rest (AES-256-GCM) and app client secrets (salted hashes).

Zoom returns a phone's password in API responses, so it must be recoverable: it is encrypted,
never hashed. App secrets are shown once and only ever compared, so they are hashed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class PasswordCipher:
    def __init__(self, key: bytes):
        self._aead = AESGCM(key)
        self._decrypt = self._aead.decrypt

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        """``context`` (the phone id) is bound as associated data: a ciphertext moved to another
        row no longer decrypts."""
        nonce = os.urandom(12)  # the OS CSPRNG: fresh in every process and thread
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def decrypt(self, blob: bytes, *, context: str) -> str:
        # A list page decrypts up to 300 of these: no more work than the format needs.
        if blob[:1] != _VERSION:
            raise ValueError("unknown SIP password encoding")
        try:
            return self._decrypt(blob[1:13], blob[13:], context.encode()).decode()
        except InvalidTag:
            raise ValueError("SIP password cannot be decrypted with this deployment's key") from None


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_secret(secret: str) -> str:
    """Salted SHA-256 of a client secret.

    Client secrets are 192 random bits made by ``sipphones.ids.new_secret``, never chosen by a
    person, so a slow password KDF adds no protection against guessing; it would only make every
    ``POST /oauth/token`` cost ~0.1 s of CPU (a cheap way to exhaust the server). Hashes of the
    older ``scrypt$`` form still verify."""
    salt = os.urandom(16)
    digest = hashlib.sha256(salt + secret.encode()).digest()
    return "sha256$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def is_slow_hash(stored: str) -> bool:
    """True for the older ``scrypt$`` form (~0.1 s of CPU to verify: worth a thread); the current
    ``sha256$`` form verifies in microseconds."""
    return stored.startswith("scrypt$")


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme == "sha256":
        digest = hashlib.sha256(salt + secret.encode()).digest()
    elif scheme == "scrypt":
        digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    else:
        return False
    return hmac.compare_digest(digest, expected)
