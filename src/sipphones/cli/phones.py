"""``sipphones phones list|create|update|delete``: SIP phones through the API, as a Zoom client
manages them (against our service or Zoom's), with ``sipphones.client``.

The client (httpx, tenacity) and rich are imported by the commands, not when the CLI starts.
Commands that come later (import, export, status) reuse ``ApiOptions``, ``open_client`` and
``api_errors``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator

import typer

from sipphones.cli.runtime import JsonOption, emit, fail
from sipphones.phones import fields as phone_fields

if TYPE_CHECKING:
    from sipphones.client import SipPhonesClient

phones_app = typer.Typer(help="Manage SIP phones through the API (this service or Zoom's), as a Zoom client does.",
                         no_args_is_help=True)

MASK = "********"
TRANSPORTS = phone_fields.TRANSPORTS
# The legacy PATCH is a near-full replace: these must be sent (Zoom's extract; our service too).
LEGACY_UPDATE_REQUIRED = phone_fields.LEGACY_UPDATE_REQUIRED
# The table shows what tells phones apart (header, field); --json gives every field.
LIST_COLUMNS = [("id", "id"), ("user email", "user_email"), ("user name", "user_name"), ("password", "password"),
                ("domain", "domain"), ("register server", "register_server"), ("transport", "transport_protocol")]

BaseUrlOption = typer.Option(None, "--base-url", envvar="ZOOM_API_BASE_URL", show_default=False,
                             help="API base URL, e.g. http://127.0.0.1:8000/v2 [default: https://api.zoom.us/v2]; "
                                  "the token URL is /oauth/token on its host (zoom.us for Zoom's).")
AccountIdOption = typer.Option(None, "--account-id", envvar="ZOOM_ACCOUNT_ID", show_default=False,
                               help="Server-to-Server OAuth account id.")
ClientIdOption = typer.Option(None, "--client-id", envvar="ZOOM_CLIENT_ID", show_default=False,
                              help="Server-to-Server OAuth client id.")
ClientSecretOption = typer.Option(None, "--client-secret", envvar="ZOOM_CLIENT_SECRET", show_default=False,
                                  show_envvar=True,
                                  help="Client secret (prefer the environment variable: other users can read "
                                       "command lines).")
TimeoutOption = typer.Option(30.0, "--timeout", help="Seconds to wait for each answer.")
MaxRetriesOption = typer.Option(5, "--max-retries",
                                help="Retries of one request (rate limits, connection failures; see the client).")
ShowPasswordsOption = typer.Option(False, "--show-passwords", help="Print SIP passwords instead of masking them.")


@dataclass(frozen=True)
class ApiOptions:
    base_url: str | None
    account_id: str | None
    client_id: str | None
    client_secret: str | None
    timeout: float
    max_retries: int


def _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries) -> ApiOptions:
    return ApiOptions(base_url, account_id, client_id, client_secret, timeout, max_retries)


@contextmanager
def api_errors(action: str = "") -> Iterator[None]:
    """The client's errors as one sentence on stderr and exit 1 (never a traceback)."""
    from sipphones.client import (
        ConfigurationError, RateLimitError, SipPhonesError, TransportError, ZoomAPIError,
    )

    try:
        yield
    except ConfigurationError as e:
        fail(str(e))
    except RateLimitError as e:
        wait = f" (the service asks to wait {e.retry_after:.0f} s)" if e.retry_after is not None else ""
        fail(f"{action}rate limited: {e.describe()}{wait}")
    except ZoomAPIError as e:
        fail(f"{action}{e.describe()}")
    except TransportError as e:
        note = " The request may have been carried out: list to check before trying again." if e.maybe_delivered else ""
        fail(f"{action}no answer from the service: {e}.{note}")
    except SipPhonesError as e:
        fail(f"{action}{e}")


@contextmanager
def open_client(options: ApiOptions) -> Iterator["SipPhonesClient"]:
    from sipphones.client import SipPhonesClient

    with api_errors():
        client = SipPhonesClient(options.account_id, options.client_id, options.client_secret,
                                 base_url=options.base_url, timeout=options.timeout, max_retries=options.max_retries)
    with client:
        yield client


def _masked(phone: dict[str, Any], show: bool) -> dict[str, Any]:
    if show or "password" not in phone:
        return phone
    return {**phone, "password": MASK}


def _transport(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    upper = value.strip().upper()
    if upper not in TRANSPORTS:
        fail(f"{option} must be one of {', '.join(TRANSPORTS)}, not {value!r}")
    return upper


def _legacy_fields(**given: Any) -> dict[str, Any]:
    """The legacy body from the options that were given (None: not given)."""
    for n in ("", "2", "3"):
        key = f"transport_protocol{n}"
        given[key] = _transport(given.get(key), f"--transport-protocol{n}")
    return {k: v for k, v in given.items() if v is not None}


# --- list -----------------------------------------------------------------------------------

@phones_app.command("list")
def phones_list(
    search_key: str = typer.Option(None, "--search-key", help="Only phones of this email or user name."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many phones."),
    show_passwords: bool = ShowPasswordsOption,
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
    as_json: bool = JsonOption,
):
    """List every SIP phone of the account (all pages of the legacy list), passwords masked."""
    options = _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    phones = []
    with open_client(options) as client, api_errors("cannot list the phones: "):
        for phone in client.legacy_iter_phones(search_key=search_key):
            phones.append(_masked(dict(phone), show_passwords))
            if limit is not None and len(phones) >= limit:
                break
    if as_json or not phones:
        emit(phones, as_json)
    else:
        _print_table(phones)


def _print_table(phones: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for header, name in LIST_COLUMNS:
        table.add_column(header, no_wrap=name == "id", overflow="fold")  # an id is copied whole
    for phone in phones:
        table.add_row(*[str(phone.get(name, "")) for _, name in LIST_COLUMNS])
    Console().print(table)


# --- create ---------------------------------------------------------------------------------

@phones_app.command("create")
def phones_create(
    user_email: str = typer.Option(..., "--user-email", help="Email of a user of the account (may end in .pc, .mac...)."),
    user_name: str = typer.Option(..., "--user-name", help="The SIP user (phone number) at the PBX."),
    authorization_name: str = typer.Option(..., "--authorization-name", help="The SIP digest user name."),
    password: str = typer.Option(None, "--password", show_default=False,
                                 help="The SIP password (asked for, hidden, when not given)."),
    domain: str = typer.Option(..., "--domain", help="The SIP domain."),
    register_server: str = typer.Option(..., "--register-server", help="host[:port] of the registrar."),
    proxy_server: str = typer.Option(None, "--proxy-server", help="host[:port] of the outbound proxy [default: the register server]."),
    transport_protocol: str = typer.Option(None, "--transport-protocol", help="UDP, TCP, TLS or AUTO [service default: UDP]."),
    register_server2: str = typer.Option(None, "--register-server2"),
    proxy_server2: str = typer.Option(None, "--proxy-server2"),
    transport_protocol2: str = typer.Option(None, "--transport-protocol2"),
    register_server3: str = typer.Option(None, "--register-server3"),
    proxy_server3: str = typer.Option(None, "--proxy-server3"),
    transport_protocol3: str = typer.Option(None, "--transport-protocol3"),
    registration_expire_time: int = typer.Option(None, "--registration-expire-time",
                                                 help="Minutes, 1-127 [service default: 60]."),
    voice_mail: str = typer.Option(..., "--voice-mail", help="The number to dial for voicemail (may be empty: '')."),
    display_number: str = typer.Option(None, "--display-number",
                                       help="Not a legacy field: set after the create through the current API."),
    show_passwords: bool = ShowPasswordsOption,
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
    as_json: bool = JsonOption,
):
    """Create a SIP phone (POST /sip_phones, the legacy API of Zoom's seed document)."""
    options = _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    fields = _legacy_fields(
        user_email=user_email, user_name=user_name, authorization_name=authorization_name, password=password,
        domain=domain, register_server=register_server, proxy_server=proxy_server or register_server,
        transport_protocol=transport_protocol, register_server2=register_server2, proxy_server2=proxy_server2,
        transport_protocol2=transport_protocol2, register_server3=register_server3, proxy_server3=proxy_server3,
        transport_protocol3=transport_protocol3, registration_expire_time=registration_expire_time,
        voice_mail=voice_mail)
    with open_client(options) as client:
        if password is None:
            fields["password"] = _ask_password()
        with api_errors("not created: "):
            phone: dict[str, Any] = dict(client.legacy_create_phone(fields))
        if display_number is not None:
            with api_errors(f"phone {phone['id']} created, but its display number was not set: "):
                client.update_phone(phone["id"], {"display_number": display_number})
            phone["display_number"] = display_number
    emit(_masked(phone, show_passwords), as_json)


def _ask_password() -> str:
    try:
        return typer.prompt("SIP password", hide_input=True, confirmation_prompt=True)
    except typer.Abort:
        fail("no password given")
        raise


# --- update ---------------------------------------------------------------------------------

@phones_app.command("update")
def phones_update(
    phone_id: str = typer.Argument(..., help="The phone's id."),
    user_email: str = typer.Option(None, "--user-email",
                                   help="The phone's user email: finds the phone faster (its owner never changes)."),
    user_name: str = typer.Option(None, "--user-name"),
    authorization_name: str = typer.Option(None, "--authorization-name"),
    password: str = typer.Option(None, "--password", show_default=False),
    domain: str = typer.Option(None, "--domain"),
    register_server: str = typer.Option(None, "--register-server"),
    proxy_server: str = typer.Option(None, "--proxy-server"),
    transport_protocol: str = typer.Option(None, "--transport-protocol"),
    register_server2: str = typer.Option(None, "--register-server2", help="'' removes server set 2."),
    proxy_server2: str = typer.Option(None, "--proxy-server2"),
    transport_protocol2: str = typer.Option(None, "--transport-protocol2"),
    register_server3: str = typer.Option(None, "--register-server3", help="'' removes server set 3."),
    proxy_server3: str = typer.Option(None, "--proxy-server3"),
    transport_protocol3: str = typer.Option(None, "--transport-protocol3"),
    registration_expire_time: int = typer.Option(None, "--registration-expire-time"),
    voice_mail: str = typer.Option(None, "--voice-mail"),
    display_number: str = typer.Option(None, "--display-number", help="Set through the current API (not a legacy field)."),
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
    as_json: bool = JsonOption,
):
    """Change the given fields of a SIP phone (PATCH /sip_phones/{id}); the others keep their values.

    The legacy PATCH replaces nearly every field, so the phone's current fields are read from the
    list first (unless every required one is given) and sent back with the changes."""
    options = _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    changes = _legacy_fields(
        user_name=user_name, authorization_name=authorization_name, password=password, domain=domain,
        register_server=register_server, proxy_server=proxy_server, transport_protocol=transport_protocol,
        register_server2=register_server2, proxy_server2=proxy_server2, transport_protocol2=transport_protocol2,
        register_server3=register_server3, proxy_server3=proxy_server3, transport_protocol3=transport_protocol3,
        registration_expire_time=registration_expire_time, voice_mail=voice_mail)
    if not changes and display_number is None:
        fail("nothing to change: give at least one field option")
    with open_client(options) as client:
        if changes:
            body = changes
            if any(name not in changes for name in LEGACY_UPDATE_REQUIRED):
                body = {**_current_fields(client, phone_id, user_email), **changes}
            with api_errors("not updated: "):
                client.legacy_update_phone(phone_id, body)
        if display_number is not None:
            with api_errors("display number not updated: " if changes else "not updated: "):
                client.update_phone(phone_id, {"display_number": display_number})
    emit({"updated": phone_id}, as_json)


def _current_fields(client: "SipPhonesClient", phone_id: str, user_email: str | None) -> dict[str, Any]:
    with api_errors("cannot read the phone: "):
        for phone in client.legacy_iter_phones(search_key=user_email):
            if phone.get("id") == phone_id:
                return {k: v for k, v in phone.items() if k not in ("id", "user_email")}
    where = f" with user email {user_email}" if user_email else ""
    fail(f"no SIP phone with id {phone_id}{where} in this account")
    raise AssertionError("unreachable")


# --- delete ---------------------------------------------------------------------------------

@phones_app.command("delete")
def phones_delete(
    phone_id: str = typer.Argument(..., help="The phone's id."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
    as_json: bool = JsonOption,
):
    """Delete a SIP phone (DELETE /sip_phones/{id}); asks first unless --yes."""
    options = _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    if not yes:
        try:
            confirmed = typer.confirm(f"Delete SIP phone {phone_id}?", default=False)
        except typer.Abort:
            confirmed = False
        if not confirmed:
            fail(f"not deleted: SIP phone {phone_id} kept (pass --yes to delete without asking)")
    with open_client(options) as client, api_errors("not deleted: "):
        client.legacy_delete_phone(phone_id)
    emit({"deleted": phone_id}, as_json)
