"""Proof Key for Code Exchange (RFC 7636): the challenge an authorization request carries and the
verifier the token request proves it with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

S256 = "S256"
PLAIN = "plain"
METHODS = (S256, PLAIN)

# RFC 7636 4.1: 43 to 128 unreserved characters (a plain challenge is a verifier).
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# An S256 challenge: the base64url of 32 bytes without padding.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    """The S256 challenge of ``verifier``: BASE64URL(SHA256(ASCII(verifier))) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def check_challenge(challenge: str, method: str) -> str | None:
    """None when ``challenge`` is well formed for ``method``, else why not (a sentence)."""
    if method not in METHODS:
        return "code_challenge_method must be S256 or plain."
    if method == S256 and not _S256_CHALLENGE.fullmatch(challenge):
        return "An S256 code_challenge is the base64url SHA-256 of the verifier: 43 characters."
    if method == PLAIN and not _VERIFIER.fullmatch(challenge):
        return "A plain code_challenge is 43 to 128 characters: letters, digits and - . _ ~."
    return None


def verifies(verifier: str, challenge: str, method: str) -> bool:
    """True if ``verifier`` is well formed and transforms into ``challenge`` by ``method``."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    derived = s256(verifier) if method == S256 else verifier
    return hmac.compare_digest(derived.encode(), challenge.encode())
