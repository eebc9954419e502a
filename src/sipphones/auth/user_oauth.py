"""User-managed OAuth apps (Zoom's "General" apps): the authorization code grant with PKCE,
rotating refresh tokens and revocation (RFC 6749, RFC 7636, RFC 7009), with Zoom's error codes.

* A code is issued for one user of the app's account, one registered redirect URI and optionally
  a PKCE challenge; it lives ``code_ttl`` seconds (Zoom: 5 minutes) and is good once: a replayed
  code is refused and the grant it gave is revoked (RFC 6749 4.1.2).
* Exchanging it makes a grant (one user's authorization of the app) and revokes the user's earlier
  grants of the same app (Zoom: "the last token issued is considered valid").
* A refresh token is ``<grant id>.<secret>``; each refresh replaces the secret (the old refresh
  token stops working at once, Zoom's rotation) and restarts its ``refresh_ttl``.
* Access tokens name their grant: revoking the grant ends them at once (``api.endpoint``).

Every expiry here is computed from ``TokenService.now()``, the one clock of the token service.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sipphones.accounts.models import App, User
from sipphones.auth import pkce
from sipphones.auth.grants import AuthorizationCode, Grant, digest
from sipphones.auth.tokens import TokenClaims, TokenService
from sipphones.errors import InvalidAccessToken, InvalidGrant, OAuthError
from sipphones.ids import new_id
from sipphones.repository import MissingReference, Repository
from sipphones.storage.crypto import is_slow_hash, verify_secret

MAX_REDIRECT_URI = 2048
MAX_REDIRECT_URIS = 10
MAX_STATE = 1024            # the ``state`` echoed back to the client
MAX_TOKEN = 4096            # a code, refresh or access token as a request carries it
MAX_CODES_PER_APP = 10_000  # codes an app may have stored (live, or used/expired within the last hour)
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")

INVALID_TOKEN = "Invalid Token!"   # Zoom's reason for a refresh token it does not know (any more)


def check_redirect_uri(uri: str) -> str | None:
    """None when ``uri`` may be registered as a redirect URI, else why not. Absolute, no fragment
    (RFC 6749 3.1.2), no white space; http(s) or an app's own scheme (native apps)."""
    if not uri or len(uri) > MAX_REDIRECT_URI:
        return f"a redirect URI has 1 to {MAX_REDIRECT_URI} characters"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in uri):
        return "a redirect URI has no white space or control characters"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"{uri!r} is not a URI"
    if not parts.scheme or not _URI_SCHEME.fullmatch(parts.scheme):
        return f"{uri!r} is not an absolute URI (it needs a scheme such as https://)"
    if parts.fragment or "#" in uri:
        return f"{uri!r} has a fragment (#...), which a redirect URI must not have"
    if parts.scheme.lower() in ("http", "https") and not parts.hostname:
        return f"{uri!r} has no host"
    return None


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    claims: TokenClaims
    refresh_token: str


class UserOAuth:
    def __init__(self, repo: Repository, tokens: TokenService, *, code_ttl: int = 300,
                 refresh_ttl: int = 90 * 86400):
        self.repo = repo
        self.tokens = tokens
        self.code_ttl = code_ttl
        self.refresh_ttl = refresh_ttl

    # --- expiries: one place, one clock -------------------------------------------------------
    def now(self) -> float:
        return self.tokens.now()

    def code_expiry(self, now: float) -> float:
        return now + self.code_ttl

    def refresh_expiry(self, now: float) -> float:
        return now + self.refresh_ttl

    # --- the client ---------------------------------------------------------------------------
    async def client(self, client_id: str, secret: str | None) -> App:
        """The user-managed app making a token or revoke request: a confidential client proves
        its secret, a public one sends none (PKCE stands in for it)."""
        app = await self.repo.get_app(client_id) if len(client_id) <= 64 else None
        if app is None:
            raise OAuthError(4702, "Invalid client_id or client_secret", status=401)
        if secret is None:
            if not app.public_client:
                raise OAuthError(4706, "Client ID or client secret is missing.")
        elif app.public_client or not await _secret_matches(secret, app.secret_hash):
            raise OAuthError(4704, "Invalid client_id or client_secret", status=401)
        if not app.active:
            raise OAuthError(4717, "The app has been disabled", status=401)
        if not app.user_managed:
            raise OAuthError(4705, "Grant type is not supported for a Server-to-Server app (it uses "
                                   "grant_type=account_credentials; its tokens expire, they are not revoked).",
                             error="unauthorized_client")
        return app

    async def authorizing_app(self, client_id: str) -> App:
        """The app an authorization request names (no secret is involved at this step)."""
        app = await self.repo.get_app(client_id) if client_id and len(client_id) <= 64 else None
        if app is None or not app.user_managed:
            raise OAuthError(4702, "Invalid client_id: no user-managed app has it.", error="invalid_client")
        if not app.active:
            raise OAuthError(4717, "The app has been disabled")
        return app

    @staticmethod
    def check_redirect(app: App, redirect_uri: str) -> None:
        """``redirect_uri`` must be one the app registered, character for character (Zoom 4709)."""
        if not redirect_uri or redirect_uri not in app.redirect_uris:
            raise OAuthError(4709, "Redirect URI mismatch.")

    # --- authorization ------------------------------------------------------------------------
    async def sign_in(self, app: App, login: str) -> User | None:
        """The user of the app's account that ``login`` names (email or user id), or None."""
        if not login or len(login) > 128:
            return None
        return (await self.repo.get_user_by_email(app.account_id, login)
                or await self.repo.get_user(app.account_id, login))

    async def issue_code(self, app: App, user: User, *, redirect_uri: str, scopes: tuple[str, ...],
                         challenge: str, challenge_method: str) -> str:
        """A new authorization code (returned once, stored as its digest)."""
        code = secrets.token_urlsafe(32)
        now = self.now()
        try:
            stored = await self.repo.add_authorization_code(AuthorizationCode(
                code_hash=digest(code), client_id=app.client_id, account_id=app.account_id, user_id=user.id,
                redirect_uri=redirect_uri, scopes=scopes, challenge=challenge, challenge_method=challenge_method,
                created_at=now, expires_at=self.code_expiry(now)), MAX_CODES_PER_APP)
        except MissingReference:
            raise OAuthError(4700, "The user or the app no longer exists.") from None
        if not stored:
            raise OAuthError(4732, f"Creating authorization code error: the app has {MAX_CODES_PER_APP:,} codes "
                                   "issued within the last hour; exchange or let them expire first.", status=429)
        return code

    # --- the token endpoint -------------------------------------------------------------------
    async def exchange_code(self, app: App, *, code: str, redirect_uri: str, verifier: str) -> IssuedTokens:
        if not code:
            raise OAuthError(4700, "Missing code.")
        found = await self.repo.get_authorization_code(digest(code)) if len(code) <= MAX_TOKEN else None
        if found is None or found.client_id != app.client_id:
            raise InvalidGrant(4734, "Invalid authorization code.")
        now = self.now()
        if found.used_at is not None:
            if found.grant_id:   # a replay: what the code gave is taken back (RFC 6749 4.1.2)
                await self.repo.revoke_grant(found.grant_id, now)
            raise InvalidGrant(4734, "Invalid authorization code.")
        if now >= found.expires_at:
            raise InvalidGrant(4733, "Code is expired")
        if redirect_uri != found.redirect_uri:
            raise OAuthError(4709, "Redirect URI mismatch.")
        if found.challenge:
            if not verifier:
                raise OAuthError(4700, "Missing code_verifier: the authorization request had a code_challenge.")
            if not pkce.verifies(verifier, found.challenge, found.challenge_method):
                raise InvalidGrant(4734, "Invalid code_verifier: it does not match the code_challenge.")
        secret = secrets.token_urlsafe(32)
        grant = Grant(id=new_id(), client_id=app.client_id, account_id=app.account_id, user_id=found.user_id,
                      scopes=found.scopes, refresh_hash=digest(secret), refresh_expires_at=self.refresh_expiry(now),
                      created_at=now)
        try:
            redeemed = await self.repo.redeem_authorization_code(found.code_hash, grant)
        except MissingReference:  # the user was deleted meanwhile
            raise InvalidGrant(4735, "The owner of the token does not exist.") from None
        if not redeemed:          # another request exchanged it first
            raise InvalidGrant(4734, "Invalid authorization code.")
        return self._issue(app, grant, secret, now)

    async def refresh(self, app: App, refresh_token: str) -> IssuedTokens:
        if not refresh_token:
            raise OAuthError(4700, "Missing refresh_token.")
        grant_id, _, secret = refresh_token.partition(".")
        grant = await self.repo.get_grant(grant_id) if secret and len(refresh_token) <= MAX_TOKEN else None
        if grant is None or grant.client_id != app.client_id or digest(secret) != grant.refresh_hash:
            raise InvalidGrant(4711, INVALID_TOKEN)
        if grant.revoked_at is not None:
            raise InvalidGrant(4741, "The token has been revoked.")
        now = self.now()
        if now >= grant.refresh_expires_at:
            raise InvalidGrant(4711, "The refresh token is expired.")
        new_secret = secrets.token_urlsafe(32)
        if not await self.repo.rotate_refresh_token(grant.id, grant.refresh_hash, digest(new_secret),
                                                    self.refresh_expiry(now)):
            raise InvalidGrant(4711, INVALID_TOKEN)   # another refresh with this token won
        return self._issue(app, grant, new_secret, now)

    def _issue(self, app: App, grant: Grant, secret: str, now: float) -> IssuedTokens:
        access, claims = self.tokens.issue(account_id=grant.account_id, client_id=app.client_id, scopes=grant.scopes,
                                           permissions=app.permissions, now=now, user_id=grant.user_id,
                                           grant_id=grant.id)
        return IssuedTokens(access, claims, f"{grant.id}.{secret}")

    # --- revocation ---------------------------------------------------------------------------
    async def revoke(self, app: App, token: str) -> None:
        """Revoke the grant behind an access or refresh token of ``app``: every token of it stops
        working. A token this service does not know is answered as revoked (RFC 7009 2.2)."""
        if not token:
            raise OAuthError(4700, "Token cannot be empty.")
        if len(token) > MAX_TOKEN:
            return
        grant_id = ""
        if token.count(".") == 2:            # a JWT: one of our access tokens?
            try:
                claims = self.tokens.read(token)
            except InvalidAccessToken:
                return
            if claims.client_id != app.client_id:
                raise OAuthError(4702, "Client ID does not match authenticated client.")
            if not claims.grant_id:
                raise OAuthError(4700, "Only the tokens of a user-managed app can be revoked.")
            grant_id = claims.grant_id
        else:
            gid, _, secret = token.partition(".")
            grant = await self.repo.get_grant(gid) if secret else None
            if grant is None or digest(secret) != grant.refresh_hash:
                return
            if grant.client_id != app.client_id:
                raise OAuthError(4702, "Client ID does not match authenticated client.")
            grant_id = grant.id
        await self.repo.revoke_grant(grant_id, self.now())


async def _secret_matches(secret: str, stored: str) -> bool:
    if is_slow_hash(stored):
        return await asyncio.to_thread(verify_secret, secret, stored)
    return verify_secret(secret, stored)
