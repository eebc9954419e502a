"""``accounts.phone_count``: the one home of its rule.

An account's row carries how many phones it has, so that a list page reads its ``total_records``
with its rows, in one statement (``storage.raw.statements.SQL_PAGE_TOTAL``), instead of counting
them. The rule that keeps it true: **every write that adds or removes phones changes the count
by the number of phones it added or removed, in the same transaction** (a new account starts at
``INITIAL``; an account's delete takes its count with it). Every such write is here:

* create, PostgreSQL: ``counted_insert`` makes the insert and its count one statement, and
  ``counted_group_insert`` a group of one account's creates and their count
  (``storage.raw.pg_group``);
* create, SQLite: the insert goes with ``created(account_id)``, a ``Tally`` that the group commit
  adds up per account and applies once before its COMMIT (``storage.raw.sqlite``);
* delete of a phone (raw path): ``deleted`` / ``deleted_in``, with the number of rows deleted;
* delete of a user and its phones (SQLAlchemy path): ``subtract``.

The lock order of every PostgreSQL write that changes which phones exist: the account row first
(``phone_count`` lives there), then rows of its users and phones. A create takes it with its
count update, before its foreign-key checks lock the user row (they run at the end of the
statement); a user, phone or account delete takes it with ``SQL_LOCK_ACCOUNT`` / ``lock``, before
anything else. So no two of them wait on each other in a circle (no deadlock), and a user delete
that holds it sees every create that got the lock before it and makes every create after it fail
its foreign key (MissingReference): the phones it counts are the phones it deletes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from sqlalchemy import select, update

from sipphones.storage import schema as t
from sipphones.storage.raw.sqlite import Tally

INITIAL = 0
SQL_COUNT_ADD = "UPDATE accounts SET phone_count = phone_count + ? WHERE id = ?"
SQL_LOCK_ACCOUNT = "SELECT 1 FROM accounts WHERE id = ? FOR NO KEY UPDATE"


def counted_insert(insert_sql: str) -> str:
    """PostgreSQL: the row and its count in one atomic statement (one round trip on an autocommit
    connection; a duplicate fails the whole statement)."""
    return (f"WITH added AS ({insert_sql} RETURNING account_id) "
            "UPDATE accounts SET phone_count = phone_count + 1 WHERE id = (SELECT account_id FROM added)")


def counted_group_insert(insert_sql: str, rows: int) -> str:
    """PostgreSQL: ``rows`` rows of one account (the last parameter: its id) and their count in one
    atomic statement; a row that hits a unique key is left out (not counted), the ids of the rows
    stored are its result. The lock order of ``counted_insert``: the rows, the account row, then
    the foreign-key checks at the end of the statement."""
    head, sep, values = insert_sql.partition(" VALUES ")
    if not sep or rows < 1:
        raise ValueError("an INSERT ... VALUES (...) statement and at least one row")
    return (f"WITH added AS ({head} VALUES {', '.join([values] * rows)} ON CONFLICT DO NOTHING RETURNING id), "
            "counted AS (UPDATE accounts SET phone_count = phone_count + (SELECT count(*) FROM added) WHERE id = ?) "
            "SELECT id FROM added")


def created(account_id: str) -> Tally:
    """SQLite: the count update that goes with one phone inserted (summed per group commit)."""
    return Tally(SQL_COUNT_ADD, account_id, 1)


def deleted(execute: Callable[[str, Sequence[Any]], int], account_id: str, gone: int) -> None:
    """``gone`` phones of the account deleted by a SQLite write (``execute`` of ``write_fn``)."""
    if gone:
        execute(SQL_COUNT_ADD, (-gone, account_id))


async def deleted_in(tx, account_id: str, gone: int) -> None:
    """``gone`` phones of the account deleted in a PostgreSQL transaction (``transact``)."""
    if gone:
        await tx.execute(SQL_COUNT_ADD, (-gone, account_id))


async def lock(conn, account_id: str, *, account_deleted: bool = False) -> None:
    """SQLAlchemy path, PostgreSQL: the account row first (see the lock order above): ``FOR
    UPDATE`` when the account row itself goes, else ``FOR NO KEY UPDATE`` as ``SQL_LOCK_ACCOUNT``."""
    q = select(t.accounts.c.id).where(t.accounts.c.id == account_id)
    await conn.execute(q.with_for_update() if account_deleted else q.with_for_update(key_share=True))


async def subtract(conn, account_id: str, gone: int) -> None:
    """SQLAlchemy path: ``gone`` phones of the account deleted in ``conn``'s transaction."""
    if gone:
        await conn.execute(update(t.accounts).where(t.accounts.c.id == account_id).values(
            phone_count=t.accounts.c.phone_count - gone))
