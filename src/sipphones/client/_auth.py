"""Server-to-Server OAuth: the access-token cache, shared by the sync and the async client.

No I/O here: the clients send the request this builds and hand the answer back. A token is
reused until ``refresh_margin`` before it expires (a tenth of its lifetime, at most 5 minutes),
then fetched anew; a token the service rejects (HTTP 401, code 124) is dropped at once.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

MAX_TOKEN_LIFETIME = 86_400.0  # seconds: a longer expires_in is not believed


@dataclass
class TokenCache:
    account_id: str
    client_id: str
    client_secret: str = field(repr=False)
    token_url: str
    _token: str | None = field(default=None, repr=False)
    _renew_at: float = 0.0  # time.monotonic() after which the token is fetched anew

    def current(self) -> str | None:
        """The cached token, or None when a new one must be fetched."""
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        return None

    def request_parts(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """URL, headers and form body of the token request (RFC 6749 client credentials, as
        Zoom's Server-to-Server OAuth takes them: Basic auth, ``grant_type=account_credentials``)."""
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return (self.token_url, {"Authorization": f"Basic {basic}", "Accept": "application/json"},
                {"grant_type": "account_credentials", "account_id": self.account_id})

    def accept(self, body: object) -> str:
        """Store the token of a 200 answer; a body without one is a ``ValueError``."""
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
            raise ValueError("the token endpoint answered without an access_token")
        expires_in = body.get("expires_in", 3600)
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
            raise ValueError("the token endpoint answered an unusable expires_in")
        lifetime = min(float(expires_in), MAX_TOKEN_LIFETIME)
        self._token = body["access_token"]
        self._renew_at = time.monotonic() + lifetime - min(300.0, lifetime / 10)
        return self._token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (rejected by the service) unless another call has replaced it."""
        if self._token == token:
            self._token = None
