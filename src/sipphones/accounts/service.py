"""Accounts, users and apps: the operator's and the API's ways to set up an account."""

from __future__ import annotations

import asyncio
import time

from sipphones.accounts.models import ALL_PERMISSIONS, Account, App, AppType, NewApp, Plan, User
from sipphones.auth.scopes import DEFAULT_APP_SCOPES, DEFAULT_USER_APP_SCOPES
from sipphones.auth.user_oauth import MAX_REDIRECT_URIS, check_redirect_uri
from sipphones.auth.tokens import TokenClaims, TokenService
from sipphones.errors import OAuthError, UserAlreadyExists, UserNotFound, ValidationFailed, FieldError
from sipphones.ids import new_client_id, new_id, new_secret
from sipphones.phones import rules
from sipphones.storage.crypto import hash_secret, is_slow_hash, verify_secret
from sipphones.repository import DuplicateKey, MissingReference, Repository


class NotFoundError(LookupError):
    """An operator asked for an account, user or app that does not exist (CLI-level error)."""


MAX_ACCOUNT_NAME = 255  # the accounts.name column
MAX_APP_NAME = 128      # the apps.name column


def _clean_name(what: str, name: str, limit: int) -> str:
    """A display name an operator typed: trimmed, not empty, within its column, printable.
    Checked here so that a bad name is one sentence, not a database error."""
    name = name.strip()
    if not name:
        raise ValueError(f"the {what} name must not be empty")
    if len(name) > limit:
        raise ValueError(f"the {what} name must be at most {limit} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"the {what} name must not contain control characters")
    return name


class AccountService:
    def __init__(self, repo: Repository):
        self.repo = repo

    # --- accounts -------------------------------------------------------------------------
    async def create_account(self, name: str, plan: Plan = Plan.PRO, *, sip_phone_integration: bool = True,
                             unlimited: bool = False, account_id: str | None = None) -> Account:
        name = _clean_name("account", name, MAX_ACCOUNT_NAME)
        account = Account(id=account_id or new_id(), name=name, plan=plan,
                          sip_phone_integration=sip_phone_integration, unlimited=unlimited, created_at=time.time())
        try:
            await self.repo.add_account(account)
        except DuplicateKey:
            raise ValueError(f"an account with id {account.id} already exists") from None
        return account

    async def require_account(self, account_id: str) -> Account:
        account = await self.repo.get_account(account_id)
        if account is None:
            raise NotFoundError(f"no account with id {account_id}")
        return account

    async def update_account(self, account_id: str, **changes) -> Account:
        import dataclasses

        if "name" in changes:
            changes["name"] = _clean_name("account", changes["name"], MAX_ACCOUNT_NAME)
        account = dataclasses.replace(await self.require_account(account_id), **changes)
        await self.repo.update_account(account)
        return account

    async def delete_account(self, account_id: str) -> None:
        if not await self.repo.delete_account(account_id):
            raise NotFoundError(f"no account with id {account_id}")

    # --- users ----------------------------------------------------------------------------
    async def create_user(self, account_id: str, email: str, first_name: str = "", last_name: str = "",
                          type: int = 1, *, user_id: str | None = None) -> User:
        """The new user; ValidationFailed for bad fields, UserAlreadyExists for an address the
        account has already, NotFoundError when the account does not exist (any more: its
        existence is checked by the insert itself, one statement, so a create racing the account's
        delete is told apart from a duplicate). ``user_id``: a fixed id (a seed file's)."""
        errors = []
        if msg := rules.check_email(email):
            errors.append(FieldError("email", msg))
        for field, value in (("first_name", first_name), ("last_name", last_name)):
            if msg := rules.check_text(value, 64, required=False):
                errors.append(FieldError(field, msg))
        if type not in (1, 2, 3, 99):
            errors.append(FieldError("type", "Must be 1 (basic), 2 (licensed), 3 (on-prem) or 99 (none)."))
        if errors:
            raise ValidationFailed(errors)
        user = User(id=user_id or new_id(), account_id=account_id, email=email.lower(), first_name=first_name,
                    last_name=last_name, type=type, created_at=time.time())
        try:
            await self.repo.add_user(user)
        except DuplicateKey:
            raise UserAlreadyExists(email) from None
        except MissingReference:
            raise NotFoundError(f"no account with id {account_id}") from None
        return user

    async def delete_user(self, account_id: str, user_ref: str) -> None:
        user = await self.repo.get_user(account_id, user_ref) or await self.repo.get_user_by_email(account_id, user_ref)
        if user is None or not await self.repo.delete_user(account_id, user.id):
            raise UserNotFound(user_ref)

    # --- apps -----------------------------------------------------------------------------
    async def create_app(self, account_id: str, name: str = "Server-to-Server app",
                         scopes: tuple[str, ...] = DEFAULT_APP_SCOPES,
                         permissions: tuple[str, ...] = ALL_PERMISSIONS, *, account_known: bool = False) -> NewApp:
        """``account_known``: the caller has just made or read the account (no lookup again)."""
        name = _clean_name("app", name, MAX_APP_NAME)
        if not account_known:
            await self.require_account(account_id)
        secret = new_secret(24)
        app = App(client_id=new_client_id(), account_id=account_id, name=name, secret_hash=hash_secret(secret),
                  scopes=tuple(scopes), permissions=tuple(permissions), created_at=time.time())
        try:
            await self.repo.add_app(app)
        except MissingReference:  # the account was deleted since it was looked up
            raise NotFoundError(f"no account with id {account_id}") from None
        return NewApp(app=app, client_secret=secret)

    async def create_user_app(self, account_id: str, name: str = "User-managed app", *,
                              redirect_uris: tuple[str, ...], scopes: tuple[str, ...] = DEFAULT_USER_APP_SCOPES,
                              permissions: tuple[str, ...] = ALL_PERMISSIONS, public_client: bool = False) -> NewApp:
        """A user-managed app: its users sign in (``/oauth/authorize``) and its tokens act as them.
        ``permissions`` stand for the role of the users who authorize it (users have no roles here).
        A public client has no secret (``client_secret`` is "") and must use PKCE."""
        name = _clean_name("app", name, MAX_APP_NAME)
        uris: list[str] = []
        for uri in redirect_uris:
            if msg := check_redirect_uri(uri):
                raise ValueError(msg)
            if uri not in uris:
                uris.append(uri)
        if not uris:
            raise ValueError("a user-managed app needs at least one redirect URI")
        if len(uris) > MAX_REDIRECT_URIS:
            raise ValueError(f"a user-managed app has at most {MAX_REDIRECT_URIS} redirect URIs")
        await self.require_account(account_id)
        secret = "" if public_client else new_secret(24)
        app = App(client_id=new_client_id(), account_id=account_id, name=name,
                  secret_hash=hash_secret(secret) if secret else "", scopes=tuple(scopes),
                  permissions=tuple(permissions), created_at=time.time(), app_type=AppType.USER_MANAGED,
                  redirect_uris=tuple(uris), public_client=public_client)
        await self.repo.add_app(app)
        return NewApp(app=app, client_secret=secret)

    async def delete_app(self, client_id: str) -> None:
        if not await self.repo.delete_app(client_id):
            raise NotFoundError(f"no app with client id {client_id}")

    # --- OAuth ----------------------------------------------------------------------------
    async def grant_account_credentials(self, tokens: TokenService, *, client_id: str, client_secret: str,
                                        account_id: str) -> tuple[str, TokenClaims]:
        app = await self.repo.get_app(client_id)
        if app is None or app.public_client:
            raise OAuthError(4702, "Invalid client_id or client_secret", status=401)
        # A fast hash is checked on the loop: a thread for it would cost more than the check, and
        # a serve worker that never starts a thread keeps its locks cheap (see cli.serving).
        if is_slow_hash(app.secret_hash):
            valid = await asyncio.to_thread(verify_secret, client_secret, app.secret_hash)
        else:
            valid = verify_secret(client_secret, app.secret_hash)
        if not valid:
            raise OAuthError(4704, "Invalid client_id or client_secret", status=401)
        if not app.active:
            raise OAuthError(4717, "The app has been disabled", status=401)
        if app.account_id != account_id:
            raise OAuthError(4700, "Invalid account_id for this app.", status=400)
        if app.user_managed:
            raise OAuthError(4705, "Grant type is not supported for a user-managed app: use the authorization "
                                   "code grant (/oauth/authorize).", error="unauthorized_client")
        return tokens.issue(account_id=account_id, client_id=app.client_id, scopes=app.scopes,
                            permissions=app.permissions)
