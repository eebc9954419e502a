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

from sipphones.cli.runtime import DatabaseOption, DataDirOption, JsonOption, emit, fail, open_store, settings_from
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


# --- status ---------------------------------------------------------------------------------

FAILED_STATES = ("failed", "invalid")  # as sipphones.phones.status.FAILED_STATES (not imported: no store here)
STATUS_COLUMNS = [("id", "phone_id"), ("user email", "user_email"), ("state", "state"), ("server", "server"),
                  ("last error", "last_error"), ("last success", "last_success_at"), ("monitor", "monitor")]


@phones_app.command("status")
def phones_status(
    failed: bool = typer.Option(False, "--failed", help="Only phones that failed to register (states failed and "
                                                        "invalid)."),
    state: list[str] = typer.Option(None, "--state", help="Only phones in this state (repeatable): registered, "
                                                          "failed, invalid, stopped, unknown, ..."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many phones."),
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
    as_json: bool = JsonOption,
):
    """Each phone's registration status as `sipphones monitor` records it (state, server and
    transport in use, last error, last success): a sipphones extension, not Zoom's API."""
    if failed and state:
        fail("use --failed or --state, not both")
    states = list(FAILED_STATES) if failed else [s.strip() for v in state or [] for s in v.split(",") if s.strip()]
    options = _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    phones: list[dict[str, Any]] = []
    with open_client(options) as client, api_errors("cannot list the phone statuses: "):
        for item in client.iter_phone_statuses(state=states or None):
            phones.append(dict(item))
            if limit is not None and len(phones) >= limit:
                break
    if as_json:
        emit(phones, True)
    elif not phones:
        typer.echo("no phones" + (" in these states" if states else ""))
    else:
        _print_status_table(phones)


def _server_cell(phone: dict[str, Any]) -> str:
    """``set 1 127.0.0.1:5060/UDP``, or empty while the phone is registered nowhere."""
    address, transport, slot = phone.get("server_address") or "", phone.get("transport") or "", phone.get("server_slot")
    if not address and slot is None:
        return ""
    where = f"{address}/{transport}" if address and transport else address
    return f"set {slot} {where}".strip() if slot is not None else where


def _print_status_table(phones: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for header, name in STATUS_COLUMNS:
        table.add_column(header, no_wrap=name in ("phone_id", "state"), overflow="fold")
    for phone in phones:
        cells = {name: str(phone.get(name) or "") for _, name in STATUS_COLUMNS}
        cells["server"] = _server_cell(phone)
        if cells["monitor"] and phone.get("monitor_alive") is False:
            cells["monitor"] += " (lease expired)"
        st = cells["state"]
        style = "green" if st == "registered" else "red" if st in FAILED_STATES else ""
        table.add_row(*[Text(cells[name], style=style) if name == "state" else cells[name]
                        for _, name in STATUS_COLUMNS])
    Console().print(table)


# --- import / export (CSV) --------------------------------------------------------------------
# The CSV logic lives in sipphones.provisioning (no CLI there); these commands wire it.

DRY_RUN_LINES = 10_000  # changes a dry run lists one by one (the summary counts them all)


def run_async(coro):
    """``coro`` on uvloop's event loop (as ``serve`` runs), the stock one without it: the import
    spends a good part of its CPU in the loop and its sockets (bench/README.md, "CSV import")."""
    import asyncio

    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


@phones_app.command("import")
def phones_import(
    file: str = typer.Argument(..., help="The CSV file: a header row of legacy field names, then one phone a row."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show what would be created or updated; "
                                                          "write nothing."),
    create_users: bool = typer.Option(False, "--create-users",
                                      help="Create the users the file names that do not exist yet (email only)."),
    concurrency: int = typer.Option(32, "--concurrency", min=1, max=64, help="Requests in flight (1-64)."),
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
    as_json: bool = JsonOption,
    store: bool = typer.Option(False, "--store", help="Write straight into this service's store (--database-url / "
                                                     "--data-dir, as the admin commands do) for --account-id, "
                                                     "instead of through the API: same checks, no HTTP."),
    database_url: str = DatabaseOption, data_dir: str = DataDirOption,
):
    """Create and update SIP phones from a CSV file, matched by user_email.

    The whole file is validated first: any invalid row and nothing is written (exit code 2,
    every error listed). Rows equal to their phone are left alone, so a second run changes
    nothing. Exit code 1 when some rows could not be written."""
    import sys

    from sipphones.provisioning.importer import Importer, ImportAborted

    if store and not account_id:
        fail("--store needs the account: --account-id or ZOOM_ACCOUNT_ID")
    options = None if store else _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    show_progress = not as_json and sys.stderr.isatty()
    planned: list = []  # a dry run's creates and updates, the first DRY_RUN_LINES of them

    def plan(p) -> None:
        if p.action == "unchanged":
            return
        if len(planned) < DRY_RUN_LINES:
            planned.append(p)
        else:
            planned[-1] = None  # shown as "..."

    importer = Importer(file, dry_run=dry_run, create_users=create_users, concurrency=concurrency,
                        on_plan=plan if dry_run and not as_json else None)

    async def go():
        from sipphones.client import AsyncSipPhonesClient

        if store:
            with _progress(show_progress) as progress:
                importer.on_progress = progress
                return await _import_into_store(importer, account_id, settings_from(database_url, data_dir))
        with api_errors():
            client = AsyncSipPhonesClient(options.account_id, options.client_id, options.client_secret,
                                          base_url=options.base_url, timeout=options.timeout,
                                          max_retries=options.max_retries, on_retry=importer.note_retry)
        async with client:
            with _progress(show_progress) as progress:
                importer.on_progress = progress
                return await importer.run(client)

    try:
        result = run_async(go())
    except ImportAborted as e:
        fail(str(e))
        raise
    if as_json:
        emit(result.as_json(), True)
    else:
        _print_import(result, planned)
    if not result.valid:
        raise typer.Exit(2)
    if result.failed or result.aborted:
        raise typer.Exit(1)


async def _import_into_store(importer, account_id: str, settings):
    """The import run on the store's domain services in this process (``provisioning.local``,
    as the console runs it): the same validation, planning and answers as over the API."""
    from sipphones.accounts.service import AccountService
    from sipphones.phones.pagination import PageTokens
    from sipphones.phones.service import PhoneService
    from sipphones.provisioning.local import LocalDirectory
    from sipphones.storage.keys import Keys, load_master_key

    async with open_store(settings) as repo:
        account = await repo.get_account(account_id)
        if account is None:
            fail(f"no account with id {account_id} in {settings.resolved_database_url()}")
        keys = Keys.derive(load_master_key(settings.secret_key, settings.data_dir))
        phones = PhoneService(repo, PageTokens(keys.page_token, settings.page_token_ttl))
        return await importer.run(LocalDirectory(account, phones, AccountService(repo), repo))


def _print_import(result, planned: list) -> None:
    import sys

    for e in result.errors:
        sys.stderr.write(f"{e}\n")
    if result.errors_total > len(result.errors):
        sys.stderr.write(f"... and {result.errors_total - len(result.errors)} more errors\n")
    if not result.valid:
        lines = "line" if result.failed == 1 else "lines"
        sys.stderr.write(f"error: {result.failed} invalid {lines}: nothing was written\n")
        return
    if result.dry_run:
        for p in planned:
            if p is None:
                sys.stdout.write(f"... (only the first {DRY_RUN_LINES - 1} changes are listed)\n")
            else:
                sys.stdout.write(f"line {p.line}: would {p.action} {p.user_email}"
                                 + (f" ({p.phone_id})" if p.phone_id else "") + "\n")
        users = f", create {result.users_created} users" if result.users_created else ""
        sys.stdout.write(f"dry run: would create {result.created}, update {result.updated}, leave "
                         f"{result.unchanged} unchanged{users}; nothing was written\n")
        return
    if result.aborted:
        sys.stderr.write(f"error: stopped: {result.aborted}\n")
    if not (result.created or result.updated or result.failed or result.users_created):
        sys.stdout.write(f"nothing to change: the {result.unchanged} phones of the file are as it says\n")
        return
    users = f", {result.users_created} users created" if result.users_created else ""
    sys.stdout.write(f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}, "
                     f"failed {result.failed}{users}\n")


@contextmanager
def _progress(show: bool):
    """A progress callback: a rich progress bar (rate, ETA) on a terminal's stderr, else nothing."""
    if not show:
        yield lambda phase, done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        tasks: dict[str, Any] = {}  # phase -> rich TaskID

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                label = "validating" if phase == "validate" else "importing"
                tasks[phase] = bar.add_task(label, total=total, rate="")
            task = tasks[phase]
            elapsed = bar.tasks[task].elapsed or 0.0
            rate = f"{done / elapsed:,.0f} rows/s" if elapsed > 0 and done else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


@phones_app.command("export")
def phones_export(
    file: str = typer.Argument(None, help="Where to write the CSV (created readable by you only) [default: stdout]."),
    include_passwords: bool = typer.Option(False, "--include-passwords",
                                           help="Write the SIP passwords (empty otherwise: an import keeps them)."),
    delimiter: str = typer.Option(",", "--delimiter", help="',' or ';' (what spreadsheets in many locales use)."),
    bom: bool = typer.Option(False, "--bom", help="Start the file with a UTF-8 BOM (Excel then reads it as UTF-8)."),
    base_url: str = BaseUrlOption, account_id: str = AccountIdOption, client_id: str = ClientIdOption,
    client_secret: str = ClientSecretOption, timeout: float = TimeoutOption, max_retries: int = MaxRetriesOption,
):
    """Write every SIP phone of the account as CSV (the columns `phones import` reads, plus phone_id)."""
    import io
    import sys

    from sipphones.provisioning.csvfile import CsvWriter, commit_private, discard_private, open_private
    from sipphones.provisioning.importer import export_phones

    if delimiter not in (",", ";"):
        fail(f"--delimiter must be ',' or ';', not {delimiter!r}")
    options = _api_options(base_url, account_id, client_id, client_secret, timeout, max_retries)
    if file is not None:
        try:
            out = open_private(file, bom=bom)
        except OSError as e:
            fail(f"cannot write {file}: {e.strerror or e}")
            raise
    else:
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8-sig" if bom else "utf-8", newline="",
                               write_through=False)

    async def go() -> int:
        from sipphones.client import AsyncSipPhonesClient

        with api_errors():
            client = AsyncSipPhonesClient(options.account_id, options.client_id, options.client_secret,
                                          base_url=options.base_url, timeout=options.timeout,
                                          max_retries=options.max_retries)
        async with client:
            with api_errors("cannot export the phones: "):
                return await export_phones(client, CsvWriter(out, delimiter=delimiter,
                                                             include_passwords=include_passwords))

    ok = False
    try:
        count = run_async(go())
        ok = True
    finally:
        if file is None:
            out.flush()
            out.detach()
        elif ok:
            commit_private(out, file)
        else:
            discard_private(out, file)
    if file is not None:
        sys.stderr.write(f"exported {count} phones to {file}\n")
