"""The Repository over SQLAlchemy Core (SQLite through aiosqlite, PostgreSQL through psycopg 3)."""

from __future__ import annotations

from typing import AsyncIterator

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from sipphones.accounts.models import Account, App, Plan, User
from sipphones.phones.models import SLOTS, Page, ServerSet, SipPhone, Transport, flat_name
from sipphones.storage import schema as t
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.database import async_engine, is_sqlite
from sipphones.storage.repository import CorruptRecord, DuplicateKey, PhoneStatus

_PHONE_COLUMNS = [c for c in t.sip_phones.c if c.name not in ("user_id", "email_key")]


def _matchable(*keys: str | None) -> bool:
    """False when a lookup key cannot match any stored row.

    Keys come straight from clients (path ids, search keys, client ids). PostgreSQL refuses a NUL
    character in a text parameter (an error, not "no row"), and nothing stored ever contains one,
    so such a lookup is answered "not found" without asking the database.
    """
    return not any(k and "\x00" in k for k in keys)


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
    def __init__(self, engine: AsyncEngine, cipher: PasswordCipher):
        self.engine = engine
        self.cipher = cipher
        self.sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str, cipher: PasswordCipher, synchronous: str = "NORMAL") -> "SqlRepository":
        return cls(async_engine(url, synchronous if is_sqlite(url) else "NORMAL"), cipher)

    async def close(self) -> None:
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
        async with self.engine.begin() as conn:
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
        if not _matchable(account_id, email):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.users).where(
                t.users.c.account_id == account_id, t.users.c.email == email.lower()))).first()
        return _user(row) if row else None

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
        async with self.engine.begin() as conn:
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
        q = (select(t.accounts).join(t.apps, t.apps.c.account_id == t.accounts.c.id)
             .where(t.apps.c.client_id == client_id, t.accounts.c.id == account_id, t.apps.c.active.is_(True)))
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return _account(row) if row else None

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
    def _phone_values(self, phone: SipPhone) -> dict:
        flat = phone.flat()
        values = {k: v for k, v in flat.items() if k not in ("id", "password")}
        values["email_key"] = phone.user_email.lower()
        values["password_enc"] = self.cipher.encrypt(phone.password, context=phone.id)
        values["updated_at"] = phone.updated_at
        return values

    def _phone(self, row) -> SipPhone:
        try:
            password = self.cipher.decrypt(row.password_enc, context=row.id)
        except ValueError as e:
            raise CorruptRecord(f"phone {row.id}: {e}") from None
        servers = tuple(
            ServerSet(
                register_server=getattr(row, flat_name("register_server", s)),
                proxy_server=getattr(row, flat_name("proxy_server", s)),
                transport_protocol=Transport(tp) if (tp := getattr(row, flat_name("transport_protocol", s))) else None,
            )
            for s in SLOTS
        )
        return SipPhone(
            id=row.id, account_id=row.account_id, user_email=row.user_email, user_name=row.user_name,
            authorization_name=row.authorization_name, password=password, domain=row.domain, servers=servers,
            registration_expire_time=row.registration_expire_time, voice_mail=row.voice_mail,
            display_number=row.display_number, created_at=row.created_at, updated_at=row.updated_at,
        )

    async def add_phone(self, phone: SipPhone, user_id: str) -> None:
        values = self._phone_values(phone)
        values.update(id=phone.id, account_id=phone.account_id, user_id=user_id, created_at=phone.created_at)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.sip_phones).values(**values))
                await conn.execute(update(t.accounts).where(t.accounts.c.id == phone.account_id).values(
                    phone_count=t.accounts.c.phone_count + 1))
        except IntegrityError as e:
            raise DuplicateKey(str(e.orig)) from None

    async def get_phone(self, account_id: str, phone_id: str) -> SipPhone | None:
        if not _matchable(account_id, phone_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_PHONE_COLUMNS).where(
                t.sip_phones.c.account_id == account_id, t.sip_phones.c.id == phone_id))).first()
        return self._phone(row) if row else None

    async def find_phone(self, phone_id: str) -> SipPhone | None:
        if not _matchable(phone_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_PHONE_COLUMNS).where(t.sip_phones.c.id == phone_id))).first()
        return self._phone(row) if row else None

    async def save_phone(self, phone: SipPhone) -> bool:
        values = self._phone_values(phone)
        values.pop("user_email")  # the owner of a phone never changes
        values.pop("email_key")
        async with self.engine.begin() as conn:
            res = await conn.execute(update(t.sip_phones).where(
                t.sip_phones.c.account_id == phone.account_id, t.sip_phones.c.id == phone.id).values(**values))
        return res.rowcount > 0

    async def delete_phone(self, account_id: str, phone_id: str) -> bool:
        if not _matchable(account_id, phone_id):
            return False
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.phone_status).where(t.phone_status.c.phone_id == phone_id))
            res = await conn.execute(delete(t.sip_phones).where(
                t.sip_phones.c.account_id == account_id, t.sip_phones.c.id == phone_id))
            if res.rowcount:
                await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(
                    phone_count=t.accounts.c.phone_count - res.rowcount))
        return res.rowcount > 0

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
    ) -> Page:
        if not _matchable(account_id, search, after_id):
            return Page(items=[], total_records=0, next_cursor=None)
        where = [t.sip_phones.c.account_id == account_id]
        if search:
            where.append(self._search_filter(search))
        q = select(*_PHONE_COLUMNS).where(*where)
        if after_id is not None:
            q = q.where(t.sip_phones.c.id > after_id)
        q = q.order_by(t.sip_phones.c.id).limit(limit + 1)
        if offset:
            q = q.offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            total = 0
            if with_total:
                if search:
                    total = (await conn.execute(select(func.count()).select_from(t.sip_phones).where(*where))).scalar_one()
                else:
                    total = (await conn.execute(select(t.accounts.c.phone_count).where(
                        t.accounts.c.id == account_id))).scalar_one_or_none() or 0
        more = len(rows) > limit
        items = [self._phone(r) for r in rows[:limit]]
        return Page(items=items, total_records=total, next_cursor=items[-1].id if more and items else None)

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
