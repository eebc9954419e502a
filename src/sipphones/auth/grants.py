"""The records of user-managed OAuth: authorization codes and the grants they turn into.

Neither holds a secret in clear: a code is stored as its SHA-256 (codes and refresh secrets are
256 random bits, so a plain digest is as good as a salted one and can be looked up), a grant as
the SHA-256 of its current refresh secret.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def digest(secret: str) -> str:
    """How a code or a refresh secret is stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class AuthorizationCode:
    code_hash: str
    client_id: str
    account_id: str
    user_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str                  # "" without PKCE
    challenge_method: str           # "S256", "plain", or "" without PKCE
    created_at: float
    expires_at: float
    used_at: float | None = None    # set when exchanged: a code is good once
    grant_id: str | None = None     # the grant it was exchanged for (revoked if the code is replayed)


@dataclass(frozen=True)
class Grant:
    """One user's authorization of one user-managed app: the refresh token's state. Its access
    tokens name it (``TokenClaims.grant_id``) and die with it."""

    id: str
    client_id: str
    account_id: str
    user_id: str
    scopes: tuple[str, ...]
    refresh_hash: str               # digest of the current refresh secret (rotated on every refresh)
    refresh_expires_at: float
    created_at: float
    revoked_at: float | None = None
