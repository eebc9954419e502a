"""Access tokens: signed JWTs (HS256) carrying the account, the app and its scopes; a user-managed
app's tokens also carry the user they act as and their grant (``auth.user_oauth``), whose
revocation the API checks on every request (``api.endpoint.authenticate``).

Verification is cached per token string: a client reuses one token for an hour, and verifying
the signature on every request would cost more than the rest of a request's work.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import jwt

from sipphones.errors import AccessTokenExpired, InvalidAccessToken

ISSUER = "sipphones"


@dataclass(frozen=True)
class TokenClaims:
    account_id: str
    client_id: str
    scopes: frozenset[str]
    permissions: frozenset[str]
    issued_at: int
    expires_at: int
    user_id: str = ""                # a user-managed app's token: the user it acts as
    grant_id: str = ""               # ... and the grant it was issued under (revocable)


class TokenService:
    def __init__(self, key: bytes, ttl: int = 3600, cache_size: int = 4096, clock: Callable[[], float] = time.time):
        """``clock``: the service's clock (``time.time``, or the emulator's ``Clock.now``)."""
        self._key = key
        self.clock = clock
        self.ttl = ttl
        self._cache: OrderedDict[str, TokenClaims] = OrderedDict()
        self._cache_size = cache_size

    def now(self) -> float:
        """The time every expiry of the OAuth grants is computed from (access tokens here,
        authorization codes and refresh tokens in ``auth.user_oauth``)."""
        return self.clock()

    def issue(self, *, account_id: str, client_id: str, scopes: tuple[str, ...], permissions: tuple[str, ...],
              now: float | None = None, user_id: str = "", grant_id: str = "") -> tuple[str, TokenClaims]:
        iat = int(self.now() if now is None else now)
        claims = {
            "iss": ISSUER, "aid": account_id, "cid": client_id, "scp": " ".join(scopes),
            "prm": " ".join(permissions), "iat": iat, "exp": iat + self.ttl, "jti": _nonce(),
        }
        if user_id:
            claims["uid"], claims["gid"] = user_id, grant_id
        token = jwt.encode(claims, self._key, algorithm="HS256")
        return token, TokenClaims(account_id, client_id, frozenset(scopes), frozenset(permissions), iat, iat + self.ttl,
                                  user_id, grant_id)

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        current = self.now() if now is None else now
        claims = self.read(token)
        if current >= claims.expires_at:
            self._cache.pop(token, None)
            raise AccessTokenExpired()
        return claims

    def read(self, token: str) -> TokenClaims:
        """The claims of a token this service signed, expired or not (``InvalidAccessToken`` for
        any other string). The emulator's journal names the account of every request with it."""
        claims = self._cache.get(token)
        if claims is None:
            try:
                # Expiry (and the issue time) are checked against the service's clock below, not
                # by PyJWT against the system's: an emulator whose clock was advanced issues
                # tokens "in the future" of time.time().
                data = jwt.decode(token, self._key, algorithms=["HS256"], issuer=ISSUER,
                                  options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "aid", "cid"]})
                claims = TokenClaims(str(data["aid"]), str(data["cid"]), frozenset(str(data.get("scp", "")).split()),
                                     frozenset(str(data.get("prm", "")).split()), int(data["iat"]), int(data["exp"]),
                                     str(data.get("uid", "")), str(data.get("gid", "")))
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                raise InvalidAccessToken() from None
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return claims


def _nonce() -> str:
    import secrets

    return secrets.token_hex(8)
