"""``sipphones accounts|apps|users ...``: operator commands on the shared store."""

from __future__ import annotations

import time

import typer

from sipphones.accounts.models import ALL_PERMISSIONS, Account, App, Plan, User
from sipphones.auth.scopes import DEFAULT_APP_SCOPES, DEFAULT_USER_APP_SCOPES, parse_scopes
from sipphones.cli.runtime import (
    DatabaseOption, DataDirOption, JsonOption, emit, fail, open_store, run, settings_from,
)

accounts_app = typer.Typer(help="Manage accounts (each with a plan and the SIP phone integration switch).", no_args_is_help=True)
apps_app = typer.Typer(help="Manage the OAuth apps of an account: Server-to-Server apps (account tokens) and "
                            "user-managed apps (users sign in; authorization code grant with PKCE).",
                       no_args_is_help=True)
users_app = typer.Typer(help="Manage the users of an account.", no_args_is_help=True)


def _accounts(repo):
    # Imported here, not at the top: the account service brings PyJWT and cryptography, which
    # every start of the CLI (``serve`` above all) would otherwise pay for.
    from sipphones.accounts.service import AccountService

    return AccountService(repo)


def account_dict(a: Account) -> dict:
    return {"id": a.id, "name": a.name, "plan": a.plan.value, "sip_phone_integration": a.sip_phone_integration,
            "unlimited": a.unlimited, "created_at": _ts(a.created_at)}


def app_dict(a: App) -> dict:
    out = {"client_id": a.client_id, "account_id": a.account_id, "name": a.name, "type": a.app_type.value,
           "scopes": list(a.scopes), "permissions": list(a.permissions), "active": a.active}
    if a.user_managed:
        out.update(redirect_uris=list(a.redirect_uris), public_client=a.public_client)
    out["created_at"] = _ts(a.created_at)
    return out


def user_dict(u: User) -> dict:
    return {"id": u.id, "account_id": u.account_id, "email": u.email, "first_name": u.first_name,
            "last_name": u.last_name, "type": u.type, "created_at": _ts(u.created_at)}


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _plan(value: str) -> Plan:
    try:
        return Plan(value.lower())
    except ValueError:
        fail(f"unknown plan '{value}': use free, pro or business")
        raise


# --- accounts -------------------------------------------------------------------------------

@accounts_app.command("create")
def accounts_create(
    name: str = typer.Option(..., "--name", help="Account name."),
    plan: str = typer.Option("pro", "--plan", help="free, pro or business (sets the rate limits)."),
    sip_phone_integration: bool = typer.Option(True, "--sip-phone-integration/--no-sip-phone-integration",
                                               help="Zoom's per-account switch; off answers code 200 on every SIP phone call."),
    unlimited: bool = typer.Option(False, "--unlimited", help="Exempt the account from rate limits (load tests, CI)."),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption,
):
    """Create an account."""
    async def go():
        async with open_store(settings_from(database_url, data_dir), create=True) as repo:
            return await _accounts(repo).create_account(name, _plan(plan), sip_phone_integration=sip_phone_integration,
                                                             unlimited=unlimited)
    emit(account_dict(run(go)), as_json)


@accounts_app.command("list")
def accounts_list(database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption):
    """List accounts."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            return await repo.list_accounts()
    emit([account_dict(a) for a in run(go)], as_json)


@accounts_app.command("update")
def accounts_update(
    account_id: str = typer.Argument(..., help="Account id."),
    name: str = typer.Option(None, "--name"),
    plan: str = typer.Option(None, "--plan", help="free, pro or business."),
    sip_phone_integration: bool = typer.Option(None, "--sip-phone-integration/--no-sip-phone-integration"),
    unlimited: bool = typer.Option(None, "--unlimited/--limited"),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption,
):
    """Change an account's name, plan, integration switch or rate-limit exemption (takes effect at once)."""
    changes = {k: v for k, v in {"name": name, "sip_phone_integration": sip_phone_integration,
                                 "unlimited": unlimited}.items() if v is not None}
    if plan is not None:
        changes["plan"] = _plan(plan)

    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            return await _accounts(repo).update_account(account_id, **changes)
    emit(account_dict(run(go)), as_json)


@accounts_app.command("delete")
def accounts_delete(account_id: str = typer.Argument(...), database_url: str = DatabaseOption,
                    data_dir: str = DataDirOption, as_json: bool = JsonOption):
    """Delete an account with its users, apps and SIP phones."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            await _accounts(repo).delete_account(account_id)
    run(go)
    emit({"deleted": account_id}, as_json)


# --- apps -----------------------------------------------------------------------------------

@apps_app.command("create")
def apps_create(
    account: str = typer.Option(..., "--account", help="Account id."),
    app_type: str = typer.Option("server-to-server", "--type",
                                 help="server-to-server (account tokens) or user-managed (users sign in through "
                                      "/oauth/authorize; sign-in there is automatic: for testing integrations)."),
    name: str = typer.Option(None, "--name", help="Default: 'Server-to-Server app' or 'User-managed app'."),
    scopes: str = typer.Option(None, "--scopes",
                               help="Space- or comma-separated scopes (default: every SIP phone and user scope; "
                                    "user-managed: the SIP phone scopes, user:read and user:read:user)."),
    permissions: str = typer.Option(" ".join(ALL_PERMISSIONS), "--permissions",
                                    help="Role permissions (default: all): SipPhone:Read SipPhone:Edit "
                                         "User:Read User:Edit. For a user-managed app: the role of its users."),
    redirect_uris: list[str] = typer.Option(None, "--redirect-uri",
                                            help="User-managed apps: a redirect URI codes may be sent to "
                                                 "(repeat for several; exact match)."),
    public: bool = typer.Option(False, "--public",
                                help="User-managed apps: a public client (no secret; PKCE required)."),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption,
):
    """Create an app; prints client_id and client_secret (the secret only this once)."""
    kind = app_type.strip().lower().replace("_", "-")
    if kind not in ("server-to-server", "user-managed"):
        fail(f"unknown app type '{app_type}': use server-to-server or user-managed")
    user_managed = kind == "user-managed"
    if not user_managed and (redirect_uris or public):
        fail("--redirect-uri and --public are for user-managed apps (--type user-managed)")
    if user_managed and not redirect_uris:
        fail("a user-managed app needs at least one --redirect-uri")
    try:
        scope_list = parse_scopes(scopes) if scopes is not None else (
            DEFAULT_USER_APP_SCOPES if user_managed else DEFAULT_APP_SCOPES)
    except ValueError as e:
        fail(str(e))
    perms = tuple(p for p in permissions.replace(",", " ").split() if p)
    for p in perms:
        if p not in ALL_PERMISSIONS:
            fail(f"unknown permission '{p}': use {', '.join(ALL_PERMISSIONS[:-1])} or {ALL_PERMISSIONS[-1]}")

    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            accounts = _accounts(repo)
            try:
                if user_managed:
                    return await accounts.create_user_app(account, name or "User-managed app",
                                                          redirect_uris=tuple(redirect_uris), scopes=scope_list,
                                                          permissions=perms, public_client=public)
                return await accounts.create_app(account, name or "Server-to-Server app", scope_list, perms)
            except ValueError as e:
                fail(str(e))
    created = run(go)
    out = app_dict(created.app)
    if created.client_secret:   # a public client has none
        out["client_secret"] = created.client_secret
    emit(out, as_json, columns=["client_id", "client_secret", "account_id", "type", "scopes"])


@apps_app.command("list")
def apps_list(account: str = typer.Option(None, "--account", help="Only this account's apps."),
              database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption):
    """List apps (never their secrets)."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            if account is not None:
                await _accounts(repo).require_account(account)
            return await repo.list_apps(account)
    emit([app_dict(a) for a in run(go)], as_json, columns=["client_id", "account_id", "name", "type", "scopes",
                                                           "active"])


@apps_app.command("delete")
def apps_delete(client_id: str = typer.Argument(...), database_url: str = DatabaseOption,
                data_dir: str = DataDirOption, as_json: bool = JsonOption):
    """Delete an app; its access tokens stop working at once."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            await _accounts(repo).delete_app(client_id)
    run(go)
    emit({"deleted": client_id}, as_json)


# --- users ----------------------------------------------------------------------------------

@users_app.command("create")
def users_create(
    account: str = typer.Option(..., "--account", help="Account id."),
    email: str = typer.Option(..., "--email"),
    first_name: str = typer.Option("", "--first-name"),
    last_name: str = typer.Option("", "--last-name"),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption, as_json: bool = JsonOption,
):
    """Add a user to an account."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            return await _accounts(repo).create_user(account, email, first_name, last_name)
    emit(user_dict(run(go)), as_json, columns=["id", "email", "first_name", "last_name", "account_id"])


@users_app.command("list")
def users_list(account: str = typer.Option(..., "--account"), database_url: str = DatabaseOption,
               data_dir: str = DataDirOption, as_json: bool = JsonOption):
    """List an account's users."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            await _accounts(repo).require_account(account)
            out, after = [], None
            while True:
                batch, _ = await repo.list_users(account, after_id=after, limit=500)
                out.extend(batch)
                if len(batch) < 500:
                    return out
                after = batch[-1].id
    emit([user_dict(u) for u in run(go)], as_json, columns=["id", "email", "first_name", "last_name"])


@users_app.command("delete")
def users_delete(user: str = typer.Argument(..., help="User id or email."),
                 account: str = typer.Option(..., "--account"), database_url: str = DatabaseOption,
                 data_dir: str = DataDirOption, as_json: bool = JsonOption):
    """Delete a user and the user's SIP phones."""
    async def go():
        async with open_store(settings_from(database_url, data_dir)) as repo:
            accounts = _accounts(repo)
            await accounts.require_account(account)
            await accounts.delete_user(account, user)
    run(go)
    emit({"deleted": user}, as_json)

