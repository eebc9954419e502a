"""The repository's SQLAlchemy Core path (SQLite through a blocking engine, PostgreSQL through
psycopg 3): accounts, user lookups and deletes, apps, the admin, CLI, monitor and search operations
on phones, and registration health (user creates and pages are on the hot path, ``storage.raw``)."""

from __future__ import annotations

import functools
from typing import Any, AsyncIterator

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from sipphones.accounts.models import Account, App, AppType, Plan, User
from sipphones.phones.models import SipPhone
from sipphones.repository import UNKNOWN_STATE, PhoneStatus, PhoneStatusEntry, StatusPage
from sipphones.storage import counts
from sipphones.storage import schema as t
from sipphones.storage.alchemy.fleet import FleetRows
from sipphones.storage.raw.rows import PhoneRows
from sipphones.storage.raw.runner import matchable as _matchable
from sipphones.storage.raw.runner import constraint_error, retrying
from sipphones.storage.raw.statements import _LIST_NULLABLE, _PHONE_COLUMNS, LIST_COLUMN_NAMES

_LIST_COLUMNS = [func.nullif(t.sip_phones.c[n], "") if n in _LIST_NULLABLE else t.sip_phones.c[n]
                 for n in LIST_COLUMN_NAMES] + [t.sip_phones.c.version]  # the same, for the search path


def _account(row) -> Account:
    return Account(id=row.id, name=row.name, plan=Plan(row.plan), sip_phone_integration=bool(row.sip_phone_integration),
                   unlimited=bool(row.unlimited), created_at=row.created_at)


def _user(row) -> User:
    return User(id=row.id, account_id=row.account_id, email=row.email, first_name=row.first_name,
                last_name=row.last_name, type=row.type, status=row.status, created_at=row.created_at)


def _app(row) -> App:
    return App(client_id=row.client_id, account_id=row.account_id, name=row.name, secret_hash=row.secret_hash,
               scopes=tuple(row.scopes.split()), permissions=tuple(row.permissions.split()),
               active=bool(row.active), created_at=row.created_at, app_type=AppType(row.app_type),
               redirect_uris=tuple(row.redirect_uris.split()), public_client=bool(row.public_client))


MAX_STATUS_IDS = 500  # phone ids of one get_statuses call (a page lists at most 300)


class AlchemyRepository(FleetRows, PhoneRows):
    engine: Any
    sqlite: bool

    # --- accounts -------------------------------------------------------------------------

    async def add_account(self, account: Account) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.accounts).values(account_row(account)))
        except IntegrityError as e:
            raise (constraint_error(e.orig) or e) from None

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
            if not self.sqlite:  # the account row first (storage.counts); SQLite has one writer
                await counts.lock(conn, account_id, account_deleted=True)
            # Explicit order: SQLite enforces ON DELETE CASCADE only with foreign_keys=ON.
            phone_ids = select(t.sip_phones.c.id).where(t.sip_phones.c.account_id == account_id)
            await conn.execute(delete(t.phone_status).where(t.phone_status.c.phone_id.in_(phone_ids)))
            await conn.execute(delete(t.sip_phones).where(t.sip_phones.c.account_id == account_id))
            await conn.execute(delete(t.oauth_codes).where(t.oauth_codes.c.account_id == account_id))
            await conn.execute(delete(t.oauth_grants).where(t.oauth_grants.c.account_id == account_id))
            await conn.execute(delete(t.apps).where(t.apps.c.account_id == account_id))
            await conn.execute(delete(t.users).where(t.users.c.account_id == account_id))
            res = await conn.execute(delete(t.accounts).where(t.accounts.c.id == account_id))
        return res.rowcount > 0

    # --- users ----------------------------------------------------------------------------

    async def get_user(self, account_id: str, user_id: str) -> User | None:
        if not _matchable(account_id, user_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.users).where(
                t.users.c.account_id == account_id, t.users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_user_by_email(self, account_id: str, email: str) -> User | None:
        return await self.get_user_by_emails(account_id, (email,))

    async def delete_user(self, account_id: str, user_id: str) -> bool:
        if not _matchable(account_id, user_id):
            return False
        return await retrying(functools.partial(self._delete_user, account_id, user_id))

    async def _delete_user(self, account_id: str, user_id: str) -> bool:
        async with self.engine.begin() as conn:
            if not self.sqlite:  # the account row first (storage.counts); SQLite has one writer
                await counts.lock(conn, account_id)
            phones = select(t.sip_phones.c.id).where(t.sip_phones.c.user_id == user_id)
            await conn.execute(delete(t.phone_status).where(t.phone_status.c.phone_id.in_(phones)))
            gone = (await conn.execute(delete(t.sip_phones).where(
                t.sip_phones.c.account_id == account_id, t.sip_phones.c.user_id == user_id))).rowcount
            # The user's codes and grants go too: the refresh tokens die with their owner.
            await conn.execute(delete(t.oauth_codes).where(t.oauth_codes.c.user_id == user_id))
            await conn.execute(delete(t.oauth_grants).where(t.oauth_grants.c.user_id == user_id))
            res = await conn.execute(delete(t.users).where(t.users.c.account_id == account_id, t.users.c.id == user_id))
            await counts.subtract(conn, account_id, gone)
        return res.rowcount > 0

    # --- apps -----------------------------------------------------------------------------

    async def add_app(self, app: App) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.apps).values(
                    client_id=app.client_id, account_id=app.account_id, name=app.name, secret_hash=app.secret_hash,
                    scopes=" ".join(app.scopes), permissions=" ".join(app.permissions), active=app.active,
                    created_at=app.created_at, app_type=app.app_type.value, redirect_uris=" ".join(app.redirect_uris),
                    public_client=app.public_client))
        except IntegrityError as e:
            raise (constraint_error(e.orig) or e) from None

    async def get_app(self, client_id: str) -> App | None:
        if not _matchable(client_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.apps).where(t.apps.c.client_id == client_id))).first()
        return _app(row) if row else None

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
            await conn.execute(delete(t.oauth_codes).where(t.oauth_codes.c.client_id == client_id))
            await conn.execute(delete(t.oauth_grants).where(t.oauth_grants.c.client_id == client_id))
            res = await conn.execute(delete(t.apps).where(t.apps.c.client_id == client_id))
        return res.rowcount > 0

    # --- phones ---------------------------------------------------------------------------

    async def find_phone(self, phone_id: str) -> SipPhone | None:
        if not _matchable(phone_id):
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_PHONE_COLUMNS).where(t.sip_phones.c.id == phone_id))).first()
        return self._phone(row) if row else None

    def _search_filter(self, account_id: str, search: str):
        key = search.strip().lower()
        full_name = func.lower(func.trim(t.users.c.first_name + " " + t.users.c.last_name))
        # The account as a value, not sip_phones' column: an uncorrelated subquery, evaluated once
        # (correlated, SQLite ran it again for every phone of the account: seconds with 10,000).
        user_match = select(t.users.c.id).where(
            t.users.c.account_id == account_id,
            or_(t.users.c.email == key, full_name == key),
        )
        return or_(
            t.sip_phones.c.email_key == key,
            func.lower(t.sip_phones.c.user_name) == key,
            t.sip_phones.c.user_id.in_(user_match),
        )

    async def _search_page(self, account_id: str, search: str, after_id: str | None, offset: int, limit: int,
                           with_total: bool) -> tuple[list, int]:
        where = [t.sip_phones.c.account_id == account_id, self._search_filter(account_id, search)]
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

    async def phone_versions(self, account_id: str | None = None) -> dict[str, int]:
        q = select(t.sip_phones.c.id, t.sip_phones.c.version)
        if account_id:
            q = q.where(t.sip_phones.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return {r.id: r.version for r in (await conn.execute(q)).all()}

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

    async def get_statuses(self, account_id: str, phone_ids: list[str]) -> dict[str, PhoneStatus]:
        """The status rows of those of ``phone_ids`` that are the account's and have one, in one
        statement (at most ``MAX_STATUS_IDS`` ids)."""
        if not phone_ids:
            return {}
        if len(phone_ids) > MAX_STATUS_IDS:
            raise ValueError(f"at most {MAX_STATUS_IDS} phone ids at once")
        s = t.phone_status
        q = select(s).where(s.c.account_id == account_id, s.c.phone_id.in_(list(phone_ids)))
        async with self.engine.connect() as conn:
            return {r.phone_id: PhoneStatus(**r._mapping) for r in (await conn.execute(q)).all()}

    async def list_status(self, account_id: str | None = None) -> list[PhoneStatus]:
        q = select(t.phone_status).order_by(t.phone_status.c.phone_id)
        if account_id:
            q = q.where(t.phone_status.c.account_id == account_id)
        async with self.engine.connect() as conn:
            return [PhoneStatus(**r._mapping) for r in (await conn.execute(q)).all()]

    async def list_phone_statuses(
        self, account_id: str, *, states: tuple[str, ...] | None, after_id: str | None, limit: int,
    ) -> StatusPage:
        """One page of the account's phones, in id order after ``after_id``, each with its status
        row (an outer join: a phone the monitor never wrote has none, its state is ``unknown``),
        only those in ``states`` when given (the filter is in the query, so a page holds ``limit``
        matching phones however few match)."""
        if not _matchable(account_id, after_id, *(states or ())):
            return StatusPage(items=[], next_cursor=None)
        p, s, k, m = t.sip_phones, t.phone_status, t.phone_keepers, t.monitors
        q = (select(p.c.id, p.c.user_email, s.c.phone_id.label("status_phone_id"),
                    *[c for c in s.c if c.name != "phone_id"], m.c.name.label("keeper_name"),
                    (m.c.heartbeat_at + m.c.lease_seconds).label("keeper_until"))
             .select_from(p.outerjoin(s, s.c.phone_id == p.c.id).outerjoin(k, k.c.phone_id == p.c.id)
                          .outerjoin(m, m.c.id == k.c.monitor_id))
             .where(p.c.account_id == account_id, p.c.id > (after_id if after_id is not None else "")))
        if states:
            wanted = or_(s.c.state.in_(states))
            if UNKNOWN_STATE in states:
                wanted = or_(wanted, s.c.phone_id.is_(None))
            q = q.where(wanted)
        q = q.order_by(p.c.id).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            now = await self._db_now(conn)
        more = len(rows) > limit
        items = []
        for r in rows[:limit]:
            row = r._mapping
            status = None
            if row["status_phone_id"] is not None:
                status = PhoneStatus(phone_id=r.id, **{c.name: row[c.name] for c in s.c if c.name != "phone_id"})
            until = row["keeper_until"]
            items.append(PhoneStatusEntry(phone_id=r.id, user_email=r.user_email, status=status,
                                          keeper=row["keeper_name"] or "", keeper_alive=until is not None and until > now))
        return StatusPage(items=items, next_cursor=items[-1].phone_id if more and items else None)


def account_row(account: Account) -> dict:
    """The ``accounts`` row of a new account (no phones yet)."""
    return dict(id=account.id, name=account.name, plan=account.plan.value,
                sip_phone_integration=account.sip_phone_integration, unlimited=account.unlimited,
                phone_count=counts.INITIAL, created_at=account.created_at)
