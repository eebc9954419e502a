"""The Repository over SQLAlchemy Core (SQLite through aiosqlite, PostgreSQL through psycopg 3)."""

from __future__ import annotations

import dataclasses
import functools
import operator
from typing import AsyncIterator, Callable, TypeVar

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sipphones.accounts.models import Account, App, Plan, User
from sipphones.phones.models import NO_SERVER, SLOTS, ServerSet, SipPhone, Transport, flat_name
from sipphones.storage import schema as t
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.database import async_engine
from sipphones.storage.raw.sqlite import Runner, Tally, retrying, runner_for
from sipphones.storage.pragmas import SqlitePragmas
from sipphones.repository import (
    CorruptRecord, DuplicateKey, PhoneRecord, PhoneStatus, RecordPage, SealPage,
)

_PHONE_COLUMNS = [c for c in t.sip_phones.c if c.name not in ("user_id", "email_key")]

# --- hot-path statements (run by storage.hotpath; ``?`` placeholders) -------------------------
# Phone rows are read by position in this column order (see ``SqlRepository._phone``).
PHONE_COLUMN_NAMES = tuple(c.name for c in _PHONE_COLUMNS)
_PHONE_COLS = ", ".join(PHONE_COLUMN_NAMES)
_ACCOUNT_COLS = "a.id, a.name, a.plan, a.sip_phone_integration, a.unlimited, a.created_at"
_USER_COLS = "id, account_id, email, first_name, last_name, type, status, created_at"
# Everything of a phone a PATCH can change, in this order (then account_id, id for the WHERE).
_UPDATABLE = tuple(n for n in PHONE_COLUMN_NAMES if n not in ("id", "account_id", "user_email", "created_at"))
_INSERTED = PHONE_COLUMN_NAMES + ("user_id", "email_key")
# A row's values (by column name) as the statement's parameters, in its column order.
_inserted_values = operator.itemgetter(*_INSERTED)
_updatable_values = operator.itemgetter(*_UPDATABLE)

SQL_ACTIVE_APP_ACCOUNT = (
    f"SELECT {_ACCOUNT_COLS} FROM apps p JOIN accounts a ON a.id = p.account_id "
    "WHERE p.client_id = ? AND a.id = ? AND p.active"
)
SQL_USERS_BY_EMAILS = f"SELECT {_USER_COLS} FROM users WHERE account_id = ? AND email IN (?, ?)"
SQL_PHONE = f"SELECT {_PHONE_COLS} FROM sip_phones WHERE account_id = ? AND id = ?"
SQL_INSERT_PHONE = (f"INSERT INTO sip_phones ({', '.join(_INSERTED)}) "
                    f"VALUES ({', '.join('?' for _ in _INSERTED)})")
SQL_UPDATE_PHONE = (f"UPDATE sip_phones SET {', '.join(n + ' = ?' for n in _UPDATABLE)} "
                    "WHERE account_id = ? AND id = ?")
SQL_COUNT_ADD = "UPDATE accounts SET phone_count = phone_count + ? WHERE id = ?"
# PostgreSQL: the row and its count in one atomic statement (one round trip on an autocommit
# connection; a duplicate fails the whole statement).
SQL_INSERT_PHONE_COUNTED = (f"WITH added AS ({SQL_INSERT_PHONE} RETURNING account_id) "
                            "UPDATE accounts SET phone_count = phone_count + 1 WHERE id = (SELECT account_id FROM added)")
# The lock order of every PostgreSQL write that changes which phones exist: the account row first
# (``phone_count`` lives there), then rows of its users and phones. A create takes it with its
# count update, before its foreign-key checks lock the user row (they run at the end of the
# statement); a user, phone or account delete takes it with this, before anything else. So no
# two of them wait on each other in a circle (no deadlock), and a user delete that holds it sees
# every create that got the lock before it and makes every create after it fail its foreign key
# (MissingReference): the phones it counts are the phones it deletes.
SQL_LOCK_ACCOUNT = "SELECT 1 FROM accounts WHERE id = ? FOR NO KEY UPDATE"
SQL_DELETE_STATUS = "DELETE FROM phone_status WHERE phone_id = ?"
SQL_DELETE_PHONE = "DELETE FROM sip_phones WHERE account_id = ? AND id = ?"
# List pages read only what a list item shows (PhoneRecord), in its order, the encrypted password
# in the password's place. The columns that are usually empty (the second and third server sets,
# the display number) come back as NULL when empty: the driver converts a NULL with one call
# instead of three for a string, on up to 300 rows of a page (``_records`` turns them back into "").
_LIST_NULLABLE = frozenset(("register_server2", "proxy_server2", "transport_protocol2", "register_server3",
                            "proxy_server3", "transport_protocol3", "display_number"))
LIST_COLUMN_NAMES = tuple("password_enc" if f == "password" else f for f in PhoneRecord._fields)
_LIST_COLS = ", ".join(f"NULLIF({n}, '')" if n in _LIST_NULLABLE else n for n in LIST_COLUMN_NAMES)
_LIST_COLUMNS = [func.nullif(t.sip_phones.c[n], "") if n in _LIST_NULLABLE else t.sip_phones.c[n]
                 for n in LIST_COLUMN_NAMES]  # the same, for the SQLAlchemy (search) path
SQL_PAGE = f"SELECT {_LIST_COLS} FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?"
# The page and the account's phone count in one statement (the count is the last column).
SQL_PAGE_TOTAL = (f"SELECT {_LIST_COLS}, (SELECT phone_count FROM accounts WHERE id = ?) "
                  "FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?")
SQL_PHONE_COUNT = "SELECT phone_count FROM accounts WHERE id = ?"
# The same pages as (id, seal) pairs (``RecordPage.seals``): a page whose items are all rendered
# already (``phones.rendered``) reads two short columns instead of eighteen.
SQL_SEALS = "SELECT id, password_enc FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?"
SQL_SEALS_TOTAL = ("SELECT id, password_enc, (SELECT phone_count FROM accounts WHERE id = ?) "
                   "FROM sip_phones WHERE account_id = ? AND id > ? ORDER BY id LIMIT ? OFFSET ?")

_TRANSPORTS: dict[str, Transport | None] = {t.value: t for t in Transport}
_TRANSPORTS[""] = None
# Server sets are immutable values and the phones of one deployment share few distinct ones:
# the three sets of a row are reused by their nine column values (a bounded cache).
_SERVER_SETS: dict[tuple, tuple[ServerSet, ServerSet, ServerSet]] = {}
_SERVER_SET_CACHE_MAX = 4096


def _server_set(register: str, proxy: str, transport: str) -> ServerSet:
    if not register and not proxy and not transport:
        return NO_SERVER
    tp = _TRANSPORTS[transport] if transport in _TRANSPORTS else Transport(transport)
    return ServerSet(register, proxy, tp)


def _server_sets(key: tuple) -> tuple[ServerSet, ServerSet, ServerSet]:
    """``key``: register, proxy, transport of slots 1, 2 and 3."""
    sets = _SERVER_SETS.get(key)
    if sets is None:
        if len(_SERVER_SETS) >= _SERVER_SET_CACHE_MAX:
            _SERVER_SETS.clear()
        sets = _SERVER_SETS[key] = (_server_set(*key[0:3]), _server_set(*key[3:6]), _server_set(*key[6:9]))
    return sets


T = TypeVar("T")

_new_record = functools.partial(tuple.__new__, PhoneRecord)


def _maker(cls: type[T]) -> Callable[[tuple], T]:
    """``cls(*values)`` for a frozen dataclass, without its per-field ``object.__setattr__``
    (about half the cost: every request builds its account, a create its user, a page up to 300
    phones). The instance is the same: same fields, equal, immutable."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def make(values: tuple) -> T:
        obj = new(cls)
        obj.__dict__.update(zip(names, values))
        return obj

    return make


_make_phone = _maker(SipPhone)
_make_account = _maker(Account)
_make_user = _maker(User)
_PLANS = {p.value: p for p in Plan}


def _matchable(*keys: str | None) -> bool:
    """False when a lookup key cannot match any stored row.

    Keys come straight from clients (path ids, search keys, client ids). PostgreSQL refuses a NUL
    character in a text parameter (an error, not "no row"), and nothing stored ever contains one,
    so such a lookup is answered "not found" without asking the database.
    """
    for k in keys:  # a loop, not any() over a generator: called several times per request
        if k and "\x00" in k:
            return False
    return True


def _account(row) -> Account:
    return Account(id=row.id, name=row.name, plan=Plan(row.plan), sip_phone_integration=bool(row.sip_phone_integration),
                   unlimited=bool(row.unlimited), created_at=row.created_at)


def _user(row) -> User:
    return User(id=row.id, account_id=row.account_id, email=row.email, first_name=row.first_name,
                last_name=row.last_name, type=row.type, status=row.status, created_at=row.created_at)


def _app(row) -> App:
    return App(client_id=row.client_id, account_id=row.account_id, name=row.name, secret_hash=row.secret_hash,
               scopes=tuple(row.scopes.split()), permissions=tuple(row.permissions.split()),
               active=bool(row.active), created_at=row.created_at)


class SqlRepository:
    """``engine`` (SQLAlchemy) serves the admin, CLI, monitor and search paths; ``hot`` (raw
    driver, see storage.hotpath) serves the per-request statements."""

    def __init__(self, engine, cipher: PasswordCipher, hot: Runner):
        self.engine = engine
        self.cipher = cipher
        self.hot = hot
        self.sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str, cipher: PasswordCipher, pragmas: SqlitePragmas = SqlitePragmas()) -> "SqlRepository":
        """``pragmas``: the settings of SQLite connections (ignored for PostgreSQL)."""
        engine, hot = async_engine(url, pragmas), runner_for(url, pragmas)
        if hasattr(hot, "flush"):  # SQLite: both paths share the file's one write lock
            engine.before_write = hot.flush
        return cls(engine, cipher, hot)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.hot.dialect

    async def ping(self) -> None:
        """One round trip to the database (the health check)."""
        await self.hot.one("SELECT 1", ())

    async def close(self) -> None:
        await self.hot.close()
        await self.engine.dispose()

    # --- accounts -------------------------------------------------------------------------
    async def add_account(self, account: Account) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.accounts).values(
                    id=account.id, name=account.name, plan=account.plan.value,
                    sip_phone_integration=account.sip_phone_integration, unlimited=account.unlimited,
                    phone_count=0, created_at=account.created_at))
        except IntegrityError as e:
            raise DuplicateKey(str(e.orig)) from None

    async def get_account(self, account_id: str) -> Account | None:
        if not _matchable(account_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.accounts).where(t.accounts.c.id == account_id))).first()
        return _account(row) if row else None

    async def list_accounts(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.accounts).order_by(t.accounts.c.created_at, t.accounts.c.id))).all()
        return [_account(r) for r in rows]

    async def update_account(self, account: Account) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(update(t.accounts).where(t.accounts.c.id == account.id).values(
                name=account.name, plan=account.plan.value, sip_phone_integration=account.sip_phone_integration,
                unlimited=account.unlimited))
        return res.rowcount > 0

    async def delete_account(self, account_id: str) -> bool:
        if not _matchable(account_id):
            return False
        return await retrying(functools.partial(self._delete_account, account_id))

    async def _delete_account(self, account_id: str) -> bool:
        async with self.engine.begin() as conn:
            if not self.sqlite:  # the account row first (SQL_LOCK_ACCOUNT); SQLite has one writer
                await conn.execute(select(t.accounts.c.id).where(t.accounts.c.id == account_id).with_for_update())
            # Explicit order: SQLite enforces ON DELETE CASCADE only with foreign_keys=ON.
            phone_ids = select(t.sip_phones.c.id).where(t.sip_phones.c.account_id == account_id)
            await conn.execute(delete(t.phone_status).where(t.phone_status.c.phone_id.in_(phone_ids)))
            await conn.execute(delete(t.sip_phones).where(t.sip_phones.c.account_id == account_id))
            await conn.execute(delete(t.apps).where(t.apps.c.account_id == account_id))
            await conn.execute(delete(t.users).where(t.users.c.account_id == account_id))
            res = await conn.execute(delete(t.accounts).where(t.accounts.c.id == account_id))
        return res.rowcount > 0

    # --- users ----------------------------------------------------------------------------
    async def add_user(self, user: User) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.users).values(
                    id=user.id, account_id=user.account_id, email=user.email.lower(), first_name=user.first_name,
                    last_name=user.last_name, type=user.type, status=user.status, created_at=user.created_at))
        except IntegrityError as e:
            raise DuplicateKey(str(e.orig)) from None

    async def get_user(self, account_id: str, user_id: str) -> User | None:
        if not _matchable(account_id, user_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.users).where(
                t.users.c.account_id == account_id, t.users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_user_by_email(self, account_id: str, email: str) -> User | None:
        return await self.get_user_by_emails(account_id, (email,))

    async def get_user_by_emails(self, account_id: str, emails: tuple[str, ...]) -> User | None:
        """The user of the first address in ``emails`` (at most two) that belongs to one: one query."""
        keys = [e.lower() for e in emails if _matchable(e)]
        if not keys or not _matchable(account_id) or len(keys) > 2:
            if len(keys) > 2:
                raise ValueError("at most two addresses")
            return None
        rows = await self.hot.all(SQL_USERS_BY_EMAILS, (account_id, keys[0], keys[-1]))
        by_email = {r[2]: r for r in rows}
        for key in keys:
            if (r := by_email.get(key)) is not None:
                return _make_user(r)  # the row is in User's field order (_USER_COLS)
        return None

    async def list_users(self, account_id: str, *, after_id: str | None, limit: int) -> tuple[list[User], int]:
        q = select(t.users).where(t.users.c.account_id == account_id)
        if after_id:
            q = q.where(t.users.c.id > after_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.order_by(t.users.c.id).limit(limit))).all()
            total = (await conn.execute(select(func.count()).select_from(t.users).where(
                t.users.c.account_id == account_id))).scalar_one()
        return [_user(r) for r in rows], total

    async def delete_user(self, account_id: str, user_id: str) -> bool:
        if not _matchable(account_id, user_id):
            return False
        return await retrying(functools.partial(self._delete_user, account_id, user_id))

    async def _delete_user(self, account_id: str, user_id: str) -> bool:
        async with self.engine.begin() as conn:
            if not self.sqlite:  # the account row first (SQL_LOCK_ACCOUNT); SQLite has one writer
                await conn.execute(select(t.accounts.c.id).where(t.accounts.c.id == account_id)
                                   .with_for_update(key_share=True))
            phones = select(t.sip_phones.c.id).where(t.sip_phones.c.user_id == user_id)
            await conn.execute(delete(t.phone_status).where(t.phone_status.c.phone_id.in_(phones)))
            gone = (await conn.execute(delete(t.sip_phones).where(
                t.sip_phones.c.account_id == account_id, t.sip_phones.c.user_id == user_id))).rowcount
            res = await conn.execute(delete(t.users).where(t.users.c.account_id == account_id, t.users.c.id == user_id))
            if gone:
                await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(
                    phone_count=t.accounts.c.phone_count - gone))
        return res.rowcount > 0

    # --- apps -----------------------------------------------------------------------------
    async def add_app(self, app: App) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.apps).values(
                    client_id=app.client_id, account_id=app.account_id, name=app.name, secret_hash=app.secret_hash,
                    scopes=" ".join(app.scopes), permissions=" ".join(app.permissions), active=app.active,
                    created_at=app.created_at))
        except IntegrityError as e:
            raise DuplicateKey(str(e.orig)) from None

    async def get_app(self, client_id: str) -> App | None:
        if not _matchable(client_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.apps).where(t.apps.c.client_id == client_id))).first()
        return _app(row) if row else None

    async def get_active_app_account(self, client_id: str, account_id: str) -> Account | None:
        """The account, if ``client_id`` is an active app of it (one query: the per-request check)."""
        if not _matchable(client_id, account_id):
            return None
        r = await self.hot.one(SQL_ACTIVE_APP_ACCOUNT, (client_id, account_id))
        if r is None:
            return None
        return _make_account((r[0], r[1], _PLANS.get(r[2]) or Plan(r[2]), bool(r[3]), bool(r[4]), r[5]))

    async def list_apps(self, account_id: str | None = None) -> list[App]:
        q = select(t.apps).order_by(t.apps.c.created_at, t.apps.c.client_id)
        if account_id:
            q = q.where(t.apps.c.account_id == account_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [_app(r) for r in rows]

    async def delete_app(self, client_id: str) -> bool:
        if not _matchable(client_id):
            return False
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(t.apps).where(t.apps.c.client_id == client_id))
        return res.rowcount > 0

    # --- phones ---------------------------------------------------------------------------
    def _phone_row(self, phone: SipPhone) -> dict:
        """A phone as stored, by column name (password encrypted, bound to the phone id).

        Every write of a phone goes through here and so encrypts its password afresh, under a new
        random nonce, even when the password is unchanged: the stored ciphertext is the row's seal
        (``RecordPage.seals``), new with each version of the row."""
        values = {
            "id": phone.id, "account_id": phone.account_id, "user_email": phone.user_email,
            "user_name": phone.user_name, "authorization_name": phone.authorization_name,
            "password_enc": self.cipher.encrypt(phone.password, context=phone.id), "domain": phone.domain,
            "registration_expire_time": phone.registration_expire_time, "voice_mail": phone.voice_mail,
            "display_number": phone.display_number, "created_at": phone.created_at, "updated_at": phone.updated_at,
        }
        for slot, s in zip(SLOTS, phone.servers):
            values[flat_name("register_server", slot)] = s.register_server
            values[flat_name("proxy_server", slot)] = s.proxy_server
            values[flat_name("transport_protocol", slot)] = s.transport_protocol.value if s.transport_protocol else ""
        return values

    def _phone(self, row) -> SipPhone:
        """A phone from a row in PHONE_COLUMN_NAMES order (a driver tuple or a SQLAlchemy row)."""
        pid = row[0]
        try:
            password = self.cipher.decrypt(row[5], context=pid)
        except (ValueError, TypeError) as e:
            raise CorruptRecord(f"phone {pid}: {e}") from None
        return _make_phone((pid, row[1], row[2], row[3], row[4], password, row[6], _server_sets(tuple(row[7:16])),
                            row[16], row[17], row[18], row[19], row[20]))

    def _records(self, rows) -> tuple[list[PhoneRecord], list[bytes]]:
        """List items from rows of LIST_COLUMN_NAMES (``_LIST_COLS``): the columns as they are, the
        password decrypted in place, the NULLs of empty optional columns back to ""; and their
        seals (the encrypted passwords as stored)."""
        decrypt = self.cipher.decrypt
        new = _new_record
        out = []
        append = out.append
        seals: list[bytes] = []
        for pid, email, user_name, auth_name, blob, domain, rs1, ps1, tp1, rs2, ps2, tp2, rs3, ps3, tp3, expire, \
                voice_mail, display_number in rows:
            try:
                password = decrypt(blob, context=pid)
            except (ValueError, TypeError) as e:
                raise CorruptRecord(f"phone {pid}: {e}") from None
            seals.append(bytes(blob))  # bytes as they are (a driver may hand bytea over as a memoryview)
            append(new((pid, email, user_name, auth_name, password, domain, rs1, ps1, tp1, rs2 or "", ps2 or "",
                        tp2 or "", rs3 or "", ps3 or "", tp3 or "", expire, voice_mail, display_number or "")))
        return out, seals

    async def add_phone(self, phone: SipPhone, user_id: str) -> None:
        values = self._phone_row(phone)
        values["user_id"] = user_id
        values["email_key"] = phone.user_email.lower()
        params = _inserted_values(values)
        if self.hot.dialect == "postgresql":
            await self.hot.write(SQL_INSERT_PHONE_COUNTED, params)
            return
        # One statement (no savepoint); the group adds up its creates' counts per account.
        await self.hot.write(SQL_INSERT_PHONE, params, tally=Tally(SQL_COUNT_ADD, phone.account_id, 1))

    async def get_phone(self, account_id: str, phone_id: str) -> SipPhone | None:
        if not _matchable(account_id, phone_id):
            return None
        row = await self.hot.one(SQL_PHONE, (account_id, phone_id))
        return self._phone(row) if row else None

    async def save_phone(self, phone: SipPhone) -> bool:
        """Every changeable field (the owner, ``user_email``, never changes)."""
        if not _matchable(phone.account_id, phone.id):
            return False
        values = self._phone_row(phone)
        params = _updatable_values(values) + (phone.account_id, phone.id)
        return await self.hot.write(SQL_UPDATE_PHONE, params) > 0

    async def delete_phone(self, account_id: str, phone_id: str) -> bool:
        if not _matchable(account_id, phone_id):
            return False
        if self.hot.dialect == "postgresql":
            async def delete_locked(tx) -> int:
                await tx.execute(SQL_LOCK_ACCOUNT, (account_id,))
                await tx.execute(SQL_DELETE_STATUS, (phone_id,))
                gone = await tx.execute(SQL_DELETE_PHONE, (account_id, phone_id))
                if gone:
                    await tx.execute(SQL_COUNT_ADD, (-gone, account_id))
                return gone

            return await self.hot.transact(delete_locked) > 0

        def delete_counted(execute) -> int:
            execute(SQL_DELETE_STATUS, (phone_id,))
            gone = execute(SQL_DELETE_PHONE, (account_id, phone_id))
            if gone:
                execute(SQL_COUNT_ADD, (-gone, account_id))
            return gone

        return await self.hot.write_fn(delete_counted) > 0

    async def find_phone(self, phone_id: str) -> SipPhone | None:
        if not _matchable(phone_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_PHONE_COLUMNS).where(t.sip_phones.c.id == phone_id))).first()
        return self._phone(row) if row else None

    def _search_filter(self, search: str):
        key = search.strip().lower()
        full_name = func.lower(func.trim(t.users.c.first_name + " " + t.users.c.last_name))
        user_match = select(t.users.c.id).where(
            t.users.c.account_id == t.sip_phones.c.account_id,
            or_(t.users.c.email == key, full_name == key),
        )
        return or_(
            t.sip_phones.c.email_key == key,
            func.lower(t.sip_phones.c.user_name) == key,
            t.sip_phones.c.user_id.in_(user_match),
        )

    async def list_phones(
        self, account_id: str, *, search: str | None, after_id: str | None, offset: int, limit: int,
        with_total: bool = True,
    ) -> RecordPage:
        if not _matchable(account_id, search, after_id):
            return RecordPage(items=[], total_records=0, next_cursor=None)
        if search:
            rows, total = await self._search_page(account_id, search, after_id, offset, limit, with_total)
        else:
            rows, total = await self._keyset_page(SQL_PAGE_TOTAL if with_total else SQL_PAGE, account_id, after_id,
                                                  offset, limit, with_total)
            if with_total:
                rows = [r[:-1] for r in rows]  # the count off: list columns only
        more = len(rows) > limit
        items, seals = self._records(rows[:limit] if more else rows)
        return RecordPage(items=items, total_records=total, next_cursor=items[-1].id if more and items else None,
                          seals=seals)

    async def list_phone_seals(
        self, account_id: str, *, after_id: str | None, offset: int, limit: int, with_total: bool = True,
    ) -> SealPage:
        if not _matchable(account_id, after_id):
            return SealPage(seals=[], total_records=0, next_cursor=None)
        rows, total = await self._keyset_page(SQL_SEALS_TOTAL if with_total else SQL_SEALS, account_id, after_id,
                                              offset, limit, with_total)
        more = len(rows) > limit
        if more:
            rows = rows[:limit]
        # The rows as the driver made them: (id, seal) or (id, seal, count). A NULL seal matches no
        # rendered item, so the page is read whole and the bad row reported there.
        return SealPage(seals=rows, total_records=total, next_cursor=rows[-1][0] if more and rows else None)

    async def _keyset_page(self, sql: str, account_id: str, after_id: str | None, offset: int, limit: int,
                           with_total: bool) -> tuple[list, int]:
        """Up to ``limit + 1`` rows of one of the page statements (one more tells that more follow),
        and the account's phone count when ``with_total`` (then the statement's last column)."""
        after = after_id if after_id is not None else ""  # ids are never empty: "id > ''" is every phone
        if not with_total:
            return await self.hot.all(sql, (account_id, after, limit + 1, offset)), 0
        rows = await self.hot.all(sql, (account_id, account_id, after, limit + 1, offset))
        if rows:
            return rows, rows[0][-1] or 0
        row = await self.hot.one(SQL_PHONE_COUNT, (account_id,))  # past the last page: no row carries it
        return rows, (row[0] if row else 0) or 0

    async def _search_page(self, account_id: str, search: str, after_id: str | None, offset: int, limit: int,
                           with_total: bool) -> tuple[list, int]:
        where = [t.sip_phones.c.account_id == account_id, self._search_filter(search)]
        q = select(*_LIST_COLUMNS).where(*where)
        if after_id is not None:
            q = q.where(t.sip_phones.c.id > after_id)
        q = q.order_by(t.sip_phones.c.id).limit(limit + 1)
        if offset:
            q = q.offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            total = 0
            if with_total:
                total = (await conn.execute(select(func.count()).select_from(t.sip_phones).where(*where))).scalar_one()
        return rows, total

    async def iter_phones(self, account_id: str | None = None, batch: int = 500) -> AsyncIterator[SipPhone]:
        after = ""
        while True:
            q = select(*_PHONE_COLUMNS).where(t.sip_phones.c.id > after)
            if account_id:
                q = q.where(t.sip_phones.c.account_id == account_id)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(q.order_by(t.sip_phones.c.id).limit(batch))).all()
            for row in rows:
                yield self._phone(row)
            if len(rows) < batch:
                return
            after = rows[-1].id

    async def phone_versions(self, account_id: str | None = None) -> dict[str, float]:
        q = select(t.sip_phones.c.id, t.sip_phones.c.updated_at)
        if account_id:
            q = q.where(t.sip_phones.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return {r.id: r.updated_at for r in (await conn.execute(q)).all()}

    # --- registration health --------------------------------------------------------------
    async def save_status(self, status: PhoneStatus) -> None:
        values = dict(status.__dict__)
        async with self.engine.begin() as conn:
            res = await conn.execute(update(t.phone_status).where(
                t.phone_status.c.phone_id == status.phone_id).values(**values))
            if res.rowcount == 0:
                exists = (await conn.execute(select(t.sip_phones.c.id).where(
                    t.sip_phones.c.id == status.phone_id))).first()
                if exists:
                    await conn.execute(insert(t.phone_status).values(**values))

    async def save_statuses(self, statuses: list[PhoneStatus]) -> None:
        """Write many status rows in one transaction (the monitor's batched writer); rows of phones
        deleted meanwhile are dropped."""
        if not statuses:
            return
        rows = {s.phone_id: dict(s.__dict__) for s in statuses}
        ids = list(rows)
        async with self.engine.begin() as conn:
            have: set[str] = set()
            phones: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                have.update((await conn.execute(select(t.phone_status.c.phone_id).where(
                    t.phone_status.c.phone_id.in_(chunk)))).scalars())
                phones.update((await conn.execute(select(t.sip_phones.c.id).where(
                    t.sip_phones.c.id.in_(chunk)))).scalars())
            updates = [dict(r, _pid=pid) for pid, r in rows.items() if pid in have]
            inserts = [r for pid, r in rows.items() if pid not in have and pid in phones]
            if updates:
                await conn.execute(update(t.phone_status).where(t.phone_status.c.phone_id == bindparam("_pid")),
                                   updates)
            if inserts:
                await conn.execute(insert(t.phone_status), inserts)

    async def get_status(self, phone_id: str) -> PhoneStatus | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.phone_status).where(t.phone_status.c.phone_id == phone_id))).first()
        return PhoneStatus(**row._mapping) if row else None

    async def list_status(self, account_id: str | None = None) -> list[PhoneStatus]:
        q = select(t.phone_status).order_by(t.phone_status.c.phone_id)
        if account_id:
            q = q.where(t.phone_status.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return [PhoneStatus(**r._mapping) for r in (await conn.execute(q)).all()]
