"""The repository's request hot path (``SqlRepository``'s per-request operations: the app check,
the user lookup, user creates and pages, phone reads and writes, list pages) through a raw-driver
``Runner``."""

from __future__ import annotations

from typing import Awaitable, Callable

from sipphones.accounts.models import Account, Plan, User
from sipphones.phones.models import SipPhone
from sipphones.repository import RecordPage, VersionPage
from sipphones.storage import counts
from sipphones.storage.raw.pg_group import GroupedCreates
from sipphones.storage.raw.rows import _PLANS, PhoneRows, _make_account, _make_user
from sipphones.storage.raw.runner import Runner
from sipphones.storage.raw.runner import matchable as _matchable
from sipphones.storage.raw.statements import (
    SQL_ACTIVE_APP_ACCOUNT, SQL_ACTIVE_GRANT_ACCOUNT, SQL_DELETE_PHONE, SQL_DELETE_STATUS, SQL_INSERT_PHONE,
    SQL_INSERT_USER, SQL_PAGE, SQL_PAGE_TOTAL, SQL_PHONE, SQL_PHONE_COUNT, SQL_UPDATE_PHONE, SQL_USER_COUNT,
    SQL_USERS_BY_EMAILS, SQL_USERS_PAGE_TOTAL, SQL_VERSIONS, SQL_VERSIONS_TOTAL, _inserted_values, _updatable_values,
)


class RawRepository(PhoneRows):
    hot: Runner
    creates: GroupedCreates | None   # PostgreSQL's phone creates; None on SQLite
    # the search path of list pages (``storage.alchemy.repository.AlchemyRepository``)
    _search_page: Callable[..., Awaitable[tuple[list, int]]]

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

    async def add_user(self, user: User) -> None:
        """One statement (SQLite: in the next group commit). DuplicateKey for an address the
        account has already; MissingReference when the account does not exist (any more)."""
        await self.hot.write(SQL_INSERT_USER, (
            user.id, user.account_id, user.email.lower(), user.first_name, user.last_name, user.type, user.status,
            user.created_at))

    async def list_users(self, account_id: str, *, after_id: str | None, limit: int) -> tuple[list[User], int]:
        """Up to ``limit`` users of the account in id order after ``after_id``, and how many it has:
        one statement (two past the last page)."""
        if not _matchable(account_id, after_id):
            return [], 0
        rows = await self.hot.all(SQL_USERS_PAGE_TOTAL, (account_id, account_id, after_id or "", limit))
        if not rows:
            row = await self.hot.one(SQL_USER_COUNT, (account_id,))
            return [], (row[0] if row else 0) or 0
        return [_make_user(r[:-1]) for r in rows], rows[0][-1]

    async def get_active_app_account(self, client_id: str, account_id: str) -> Account | None:
        """The account, if ``client_id`` is an active app of it (one query: the per-request check)."""
        if not _matchable(client_id, account_id):
            return None
        r = await self.hot.one(SQL_ACTIVE_APP_ACCOUNT, (client_id, account_id))
        if r is None:
            return None
        return _make_account((r[0], r[1], _PLANS.get(r[2]) or Plan(r[2]), bool(r[3]), bool(r[4]), r[5]))

    async def get_active_grant_account(self, grant_id: str, client_id: str, account_id: str,
                                       user_id: str) -> Account | None:
        """The account, if the grant is active and names this app, account and user (one query:
        the per-request check of a user-managed app's token)."""
        if not _matchable(grant_id, client_id, account_id, user_id):
            return None
        r = await self.hot.one(SQL_ACTIVE_GRANT_ACCOUNT, (grant_id, client_id, account_id, user_id))
        if r is None:
            return None
        return _make_account((r[0], r[1], _PLANS.get(r[2]) or Plan(r[2]), bool(r[3]), bool(r[4]), r[5]))

    async def add_phone(self, phone: SipPhone, user_id: str) -> None:
        values = self._phone_row(phone)
        values["user_id"] = user_id
        values["email_key"] = phone.user_email.lower()
        params = _inserted_values(values)
        if self.creates is not None:  # PostgreSQL: in a group of the account's creates (storage.raw.pg_group)
            await self.creates.create(phone.account_id, params)
            return
        # One statement (no savepoint); the group adds up its creates' counts per account.
        await self.hot.write(SQL_INSERT_PHONE, params, tally=counts.created(phone.account_id))

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
                await tx.execute(counts.SQL_LOCK_ACCOUNT, (account_id,))
                await tx.execute(SQL_DELETE_STATUS, (phone_id,))
                gone = await tx.execute(SQL_DELETE_PHONE, (account_id, phone_id))
                await counts.deleted_in(tx, account_id, gone)
                return gone

            return await self.hot.transact(delete_locked) > 0

        def delete_counted(execute) -> int:
            execute(SQL_DELETE_STATUS, (phone_id,))
            gone = execute(SQL_DELETE_PHONE, (account_id, phone_id))
            counts.deleted(execute, account_id, gone)
            return gone

        return await self.hot.write_fn(delete_counted) > 0

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
        items, versions = self._records(rows[:limit] if more else rows)
        return RecordPage(items=items, total_records=total, next_cursor=items[-1].id if more and items else None,
                          versions=versions)

    async def list_phone_versions(
        self, account_id: str, *, after_id: str | None, offset: int, limit: int, with_total: bool = True,
    ) -> VersionPage:
        if not _matchable(account_id, after_id):
            return VersionPage(versions=[], total_records=0, next_cursor=None)
        rows, total = await self._keyset_page(SQL_VERSIONS_TOTAL if with_total else SQL_VERSIONS, account_id, after_id,
                                              offset, limit, with_total)
        more = len(rows) > limit
        if more:
            rows = rows[:limit]
        # The rows as the driver made them: (id, version) or (id, version, count).
        return VersionPage(versions=rows, total_records=total, next_cursor=rows[-1][0] if more and rows else None)

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
