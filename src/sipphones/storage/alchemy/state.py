"""The whole stored state as plain rows, and replacing it in one transaction (the emulator's
reset, seed and snapshot; ``sipphones.emulator``).

Rows are JSON-ready dicts, table by table, in the order the tables depend on each other
(``metadata.sorted_tables``), so any table a later migration adds to ``storage.schema`` is
covered. Two columns are translated so that a dump loads into another deployment (another
master key): a phone's ``password_enc`` is dumped as ``password`` in clear text and encrypted
again on load; any other binary column is written as ``{"$base64": "..."}``.

``replace_state`` deletes every row (or one account's rows: the tables with an ``account_id``
column, and the account's own row) and inserts the given rows in the same transaction: a reset
is a handful of statements, not a rebuild of the database.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from sipphones.accounts.models import Account, App, User
from sipphones.repository import DuplicateKey

from sipphones.storage import schema as t
from sipphones.storage.alchemy.repository import account_row

PASSWORD_COLUMN = "password"  # sip_phones.password_enc, in clear text, in a dump


def _account_column(table):
    if table is t.accounts:
        return table.c.id
    return table.c.get("account_id")


def _encode(table, row: dict, cipher) -> dict:
    out = {}
    for name, value in row.items():
        if table is t.sip_phones and name == "password_enc":
            out[PASSWORD_COLUMN] = cipher.decrypt(value, context=row["id"])
        elif isinstance(value, (bytes, bytearray, memoryview)):
            out[str(name)] = {"$base64": base64.b64encode(bytes(value)).decode()}
        else:
            out[str(name)] = value
    return out


def _decode(table, row: dict, cipher) -> dict:
    out = {}
    for name, value in row.items():
        if table is t.sip_phones and name == PASSWORD_COLUMN:
            out["password_enc"] = cipher.encrypt(str(value), context=str(row["id"]))
        elif isinstance(value, dict) and set(value) == {"$base64"}:
            out[name] = base64.b64decode(value["$base64"], validate=True)
        else:
            out[str(name)] = value
    return out


def check_rows(tables: dict[str, list[dict]]) -> None:
    """Raise ValueError unless every table and column is one of ours (before anything is written)."""
    known = {table.name: table for table in t.metadata.sorted_tables}
    for name, rows in tables.items():
        table = known.get(name)
        if table is None:
            raise ValueError(f"unknown table {name!r}")
        if not isinstance(rows, list):
            raise ValueError(f"table {name!r} must be a list of rows")
        columns = set(table.c.keys())
        if table is t.sip_phones:
            columns = (columns - {"password_enc"}) | {PASSWORD_COLUMN}
        for row in rows:
            if not isinstance(row, dict):
                raise ValueError(f"a row of {name!r} is not an object")
            unknown = set(row) - columns
            if unknown:
                raise ValueError(f"table {name!r} has no column {sorted(unknown)[0]!r}")


class PreparedState:
    """Rows checked and decoded into their stored form once (a reset's baseline): inserting them
    again costs no checking, decoding or encryption."""

    def __init__(self, rows: dict[str, list[dict]], count: int) -> None:
        self.rows = rows
        self.count = count


class StateRows:
    engine: Any
    cipher: Any

    async def add_account_bundle(self, account: Account, users: list[User], app: App) -> None:
        """An account with its users and one app, in one transaction (the emulator's fresh account)."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(t.accounts).values(account_row(account)))
                if users:
                    await conn.execute(insert(t.users), [
                        {"id": u.id, "account_id": u.account_id, "email": u.email, "first_name": u.first_name,
                         "last_name": u.last_name, "type": u.type, "status": u.status, "created_at": u.created_at}
                        for u in users])
                await conn.execute(insert(t.apps).values(
                    client_id=app.client_id, account_id=app.account_id, name=app.name, secret_hash=app.secret_hash,
                    scopes=" ".join(app.scopes), permissions=" ".join(app.permissions), active=app.active,
                    created_at=app.created_at))
        except IntegrityError as e:
            raise DuplicateKey(str(e.orig)) from None

    def prepare_state(self, tables: dict[str, list[dict]]) -> PreparedState:
        """``tables`` (a dump's form) checked and decoded for ``replace_state``; ValueError if they do not fit."""
        check_rows(tables)
        try:
            rows = {name: [_decode(table, row, self.cipher) for row in tables.get(name) or []]
                    for name, table in ((table.name, table) for table in t.metadata.sorted_tables)}
        except (TypeError, ValueError, KeyError, binascii.Error) as e:
            raise ValueError(f"the rows do not fit the tables ({e})") from None
        return PreparedState(rows, sum(len(v) for v in rows.values()))

    async def dump_state(self, account_id: str | None = None) -> dict[str, list[dict]]:
        """Every row (or the rows of one account), table by table."""
        out: dict[str, list[dict]] = {}
        async with self.engine.connect() as conn:
            for table in t.metadata.sorted_tables:
                query = select(table)
                if account_id is not None:
                    column = _account_column(table)
                    if column is None:
                        continue
                    query = query.where(column == account_id)
                primary = list(table.primary_key.columns)
                result = await conn.execute(query.order_by(*primary))
                out[str(table.name)] = [_encode(table, dict(row._mapping), self.cipher) for row in result]
        return out

    async def replace_state(self, tables: dict[str, list[dict]] | PreparedState, account_id: str | None = None) -> None:
        """Delete every row (or one account's) and insert ``tables``' rows (a dump's form, or
        prepared by ``prepare_state``), in one transaction. With ``account_id``, only that
        account's rows of ``tables`` are inserted."""
        prepared = tables if isinstance(tables, PreparedState) else self.prepare_state(tables)
        try:
            await self._replace(prepared.rows, account_id)
        except (SQLAlchemyError, TypeError, ValueError, KeyError) as e:
            # A row that does not fit its table (a missing column, a duplicate key, a wrong type):
            # the transaction is rolled back, nothing changed.
            detail = str(getattr(e, "orig", None) or e).strip().splitlines()[0][:300]
            raise ValueError(f"the rows do not fit the tables ({detail})") from None

    async def _replace(self, tables: dict[str, list[dict]], account_id: str | None) -> None:
        ordered = t.metadata.sorted_tables
        async with self.engine.begin() as conn:
            for table in reversed(ordered):
                column = _account_column(table) if account_id is not None else None
                if account_id is not None and column is None:
                    continue
                statement = delete(table)
                if column is not None:
                    statement = statement.where(column == account_id)
                await conn.execute(statement)
            for table in ordered:
                rows = tables.get(table.name) or []
                if account_id is not None:
                    key = "id" if table is t.accounts else "account_id"
                    if _account_column(table) is None:
                        continue
                    rows = [row for row in rows if row.get(key) == account_id]
                if rows:
                    await conn.execute(insert(table), rows)

