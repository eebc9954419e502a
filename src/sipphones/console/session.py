"""The console's session: who is signed in, carried in a signed cookie (itsdangerous).

The cookie holds the account id, the app's client id, the app's scopes and role permissions as
they were at sign-in (like an access token's claims), a random CSRF token and the sign-in time;
it is signed with a key derived from the master key (``storage.keys``), so it cannot be forged or
edited, and it expires ``SESSION_TTL`` seconds after sign-in. It is ``HttpOnly``,
``SameSite=Strict``, ``Secure`` when the request came over HTTPS, and its path is ``/console``.
Every request also checks that the app and account are still there and active (a deleted or
disabled app ends its sessions).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from sipphones.auth.scopes import REQUIREMENTS, Operation

COOKIE = "sipphones_console"
PRE_COOKIE = "sipphones_console_pre"   # the sign-in form's CSRF token, before anyone is signed in
SESSION_TTL = 8 * 3600                  # seconds a sign-in lasts
PRE_TTL = 3600
MAX_COOKIE_CHARS = 4096
PATH = "/console"
_SALT = "sipphones.console.session"


@dataclass(frozen=True)
class Session:
    account_id: str
    client_id: str
    scopes: frozenset[str]
    permissions: frozenset[str]
    csrf: str
    signed_in_at: float

    def can(self, operation: Operation) -> bool:
        """Whether the app's scopes and role permission allow ``operation`` (as the API decides)."""
        req = REQUIREMENTS[operation]
        if not self.scopes.intersection(req.scopes):
            return False
        return not req.permission or req.permission in self.permissions

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


class SessionCodec:
    def __init__(self, key: bytes):
        if not key:
            raise ValueError("the console needs a session key")
        self._signer = URLSafeTimedSerializer(key, salt=_SALT)
        self._pre = URLSafeTimedSerializer(key, salt=_SALT + ".pre")

    def dump(self, s: Session) -> str:
        return self._signer.dumps([s.account_id, s.client_id, sorted(s.scopes), sorted(s.permissions), s.csrf,
                                   s.signed_in_at])

    def load(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        try:
            data = self._signer.loads(cookie, max_age=SESSION_TTL)
            account_id, client_id, scopes, permissions, csrf, at = data
            session = Session(str(account_id), str(client_id), frozenset(map(str, scopes)),
                              frozenset(map(str, permissions)), str(csrf), float(at))
        except (BadSignature, ValueError, TypeError):
            return None
        if session.signed_in_at + SESSION_TTL < time.time():
            return None
        return session

    def dump_pre(self, csrf: str) -> str:
        return self._pre.dumps(csrf)

    def load_pre(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > MAX_COOKIE_CHARS:
            return None
        try:
            value = self._pre.loads(cookie, max_age=PRE_TTL)
        except (BadSignature, ValueError, TypeError):
            return None
        return value if isinstance(value, str) else None


def set_cookie(response, request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def clear_cookie(response, request, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https")
