"""The storage interface the domain services depend on (and nothing else about storage): the
``Repository`` protocol, the records it hands over and the errors it raises. It spans the phone,
account and monitor domains; ``sipphones.storage.store.SqlRepository`` implements it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable, NamedTuple, Protocol, Sequence

from sipphones.accounts.models import Account, App, User
from sipphones.auth.grants import AuthorizationCode, Grant
from sipphones.phones.fields import RECORD_NAMES
from sipphones.phones.models import SipPhone


class DuplicateKey(Exception):
    """A uniqueness rule of the store was hit (same user email, same phone email, ...)."""


class MissingReference(Exception):
    """A write refers to a row that does not exist (any more): e.g. a phone of a user deleted
    while the phone was being created."""


class StoreUnavailable(Exception):
    """The store does not answer: down, restarting, unreachable, out of connections, or slower
    than its deadline. Nothing is known of the operation: a read may be tried again; a write may
    or may not have been stored (it was never reported as stored)."""


class CorruptRecord(Exception):
    """A stored row cannot be read back (e.g. a password that does not decrypt)."""


@dataclass(frozen=True)
class PhoneStatus:
    phone_id: str
    account_id: str
    registered: bool
    state: str
    server_slot: int | None
    server_address: str
    transport: str
    last_error: str
    last_status_code: int | None
    last_success_at: float | None
    last_attempt_at: float | None
    granted_expires: int | None
    updated_at: float


class PhoneRecord(NamedTuple):
    """A stored phone as list pages show it: flat (the legacy field spelling, unused server slots
    as empty strings), read-only, password in clear; only the fields a list item shows (no owner,
    no timestamps). A list page holds up to 300 of these, so they are plain tuples rather than
    SipPhone objects with nested ServerSets and enums (which cost about twice as much to build).
    Its fields are the table's (``phones.fields``), in its order: checked below at import."""

    id: str
    user_email: str
    user_name: str
    authorization_name: str
    password: str
    domain: str
    register_server: str
    proxy_server: str
    transport_protocol: str
    register_server2: str
    proxy_server2: str
    transport_protocol2: str
    register_server3: str
    proxy_server3: str
    transport_protocol3: str
    registration_expire_time: int
    voice_mail: str
    display_number: str


if PhoneRecord._fields != RECORD_NAMES:
    raise ImportError(f"PhoneRecord's fields {PhoneRecord._fields} are not the table's {RECORD_NAMES} (phones.fields)")


@dataclass(frozen=True)
class RecordPage:
    """One page of a keyset-paginated listing of phones.

    ``versions[i]`` is the stored version of ``items[i]``'s row: 1 when created, one more with
    every write of the row, so equal versions mean the same row as it was (``phones.rendered``)."""

    items: list[PhoneRecord]
    total_records: int
    next_cursor: str | None  # id of the last item when more remain, else None
    versions: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class VersionPage:
    """The same page as ``list_phones`` would give, as ``(id, version, ...)`` rows only (a driver
    may add columns after these two)."""

    versions: Sequence[Sequence]
    total_records: int
    next_cursor: str | None


class Repository(Protocol):
    # accounts
    async def add_account(self, account: Account) -> None: ...
    async def get_account(self, account_id: str) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...
    async def update_account(self, account: Account) -> bool: ...
    async def delete_account(self, account_id: str) -> bool: ...

    # users
    async def add_user(self, user: User) -> None: ...
    async def get_user(self, account_id: str, user_id: str) -> User | None: ...
    async def get_user_by_email(self, account_id: str, email: str) -> User | None: ...
    async def get_user_by_emails(self, account_id: str, emails: tuple[str, ...]) -> User | None:
        """The user of the first of (at most two) addresses that has one, in one lookup."""
        ...
    async def list_users(self, account_id: str, *, after_id: str | None, limit: int) -> tuple[list[User], int]: ...
    async def delete_user(self, account_id: str, user_id: str) -> bool: ...

    # apps
    async def add_app(self, app: App) -> None: ...
    async def get_app(self, client_id: str) -> App | None: ...
    async def get_active_app_account(self, client_id: str, account_id: str) -> Account | None: ...
    async def list_apps(self, account_id: str | None = None) -> list[App]: ...
    async def delete_app(self, client_id: str) -> bool: ...

    # user-managed OAuth (``auth.user_oauth``)
    async def add_authorization_code(self, code: AuthorizationCode, limit: int) -> bool:
        """False (nothing stored) if the code's app has ``limit`` codes kept already."""
        ...
    async def get_authorization_code(self, code_hash: str) -> AuthorizationCode | None: ...
    async def redeem_authorization_code(self, code_hash: str, grant: Grant) -> bool:
        """Atomically: the code marked used for ``grant`` (False if it was used already), the
        user's other active grants of the app revoked, ``grant`` written."""
        ...
    async def get_grant(self, grant_id: str) -> Grant | None: ...
    async def rotate_refresh_token(self, grant_id: str, old_hash: str, new_hash: str, expires_at: float) -> bool: ...
    async def revoke_grant(self, grant_id: str, now: float) -> bool: ...
    async def get_active_grant_account(self, grant_id: str, client_id: str, account_id: str,
                                       user_id: str) -> Account | None: ...

    # phones
    async def add_phone(self, phone: SipPhone, user_id: str) -> None: ...
    async def get_phone(self, account_id: str, phone_id: str) -> SipPhone | None: ...
    async def find_phone(self, phone_id: str) -> SipPhone | None: ...
    async def save_phone(self, phone: SipPhone) -> bool: ...
    async def delete_phone(self, account_id: str, phone_id: str) -> bool: ...
    async def list_phones(
        self, account_id: str, *, search: str | None, after_id: str | None, offset: int, limit: int,
        with_total: bool = True,
    ) -> RecordPage: ...
    async def list_phone_versions(
        self, account_id: str, *, after_id: str | None, offset: int, limit: int, with_total: bool = True,
    ) -> VersionPage: ...
    def iter_phones(self, account_id: str | None = None, batch: int = 500) -> AsyncIterator[SipPhone]: ...
    async def phone_versions(self, account_id: str | None = None) -> dict[str, int]:
        """Every phone's id and its row's version (``SipPhone.version``)."""
        ...

    # registration health (written by the monitor)
    async def save_status(self, status: PhoneStatus) -> None: ...
    async def save_statuses(self, statuses: list[PhoneStatus]) -> None: ...
    async def get_status(self, phone_id: str) -> PhoneStatus | None: ...
    async def get_statuses(self, account_id: str, phone_ids: list[str]) -> dict[str, PhoneStatus]:
        """The status rows of those of ``phone_ids`` (at most 500) that are the account's, by phone id."""
        ...
    async def list_status(self, account_id: str | None = None) -> list[PhoneStatus]: ...

    async def close(self) -> None: ...

    # the whole state as JSON-ready rows, table by table (the emulator's reset, seed and snapshot)
    async def dump_state(self, account_id: str | None = None) -> dict[str, list[dict]]: ...
    async def add_account_bundle(self, account: Account, users: list[User], app: App) -> None:
        """An account with its users and one app, in one transaction."""
        ...
    def prepare_state(self, tables: dict[str, list[dict]]) -> Any:
        """``tables`` checked and decoded once, for repeated ``replace_state`` (a reset's baseline)."""
        ...
    async def replace_state(self, tables: Any, account_id: str | None = None) -> None:
        """Every row (or one account's) replaced by ``tables``' rows (a dump's form, or
        ``prepare_state``'s), in one transaction."""
        ...
    # monitors sharing a fleet (``monitor.fleet``; ``storage.alchemy.fleet`` says how)
    async def fleet_heartbeat(self, monitor_id: str, name: str, lease: float) -> FleetView: ...
    async def fleet_claim(self, monitor_id: str, phone_ids: Iterable[str]) -> dict[str, str]: ...
    async def fleet_release(self, monitor_id: str, phone_ids: Iterable[str]) -> None: ...
    async def fleet_kept(self, monitor_id: str) -> set[str]: ...
    async def fleet_contacts(self, monitor_id: str, contacts: dict[str, str]) -> None: ...
    async def fleet_leave(self, monitor_id: str) -> None: ...
    async def fleet_forget_others(self, monitor_id: str) -> None: ...

    # registration health, listed with the phones (``phones.status``)
    async def list_phone_statuses(
        self, account_id: str, *, states: tuple[str, ...] | None, after_id: str | None, limit: int,
    ) -> "StatusPage": ...


UNKNOWN_STATE = "unknown"  # the state of a phone without a status row (the monitor never saw it)


@dataclass(frozen=True)
class PhoneStatusEntry:
    """A phone of a status listing: its id and user email, its status row (None: no row), and
    the monitor that keeps it (its name, ``host:pid``; ``""``: none), ``keeper_alive`` False when
    that monitor's lease has run out (another takes the phone over)."""

    phone_id: str
    user_email: str
    status: PhoneStatus | None
    keeper: str = ""
    keeper_alive: bool = False


@dataclass(frozen=True)
class FleetView:
    """What a monitor's heartbeat learns: the database's time and the live monitors (id -> name)."""

    now: float
    members: dict[str, str]


@dataclass(frozen=True)
class StatusPage:
    """One page of ``list_phone_statuses``: phones in id order (keyset-paginated)."""

    items: list[PhoneStatusEntry]
    next_cursor: str | None  # id of the last item when more remain, else None
