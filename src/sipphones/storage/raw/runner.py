"""Raw-driver statement runners for the request hot path (auth, user lookup, user creates and
pages, phone reads/writes, list pages).

Why: through SQLAlchemy's async layer one primary-key SELECT costs ~250 µs of CPU on SQLite and
~420 µs on PostgreSQL (greenlet hops, a pool checkout with a pre-ping, result wrapping), against
a few µs through blocking ``sqlite3`` and ~35 µs through psycopg's async connection. The hot
statements are fixed strings written once here (``?`` placeholders; the PostgreSQL runner turns
them into ``%s`` once per statement) and run through:

* ``SqliteRunner``: one ``sqlite3`` connection per process, in autocommit mode, statements run
  blocking on the event loop (microseconds each). A write is ``BEGIN IMMEDIATE`` ... ``COMMIT``
  that never spans a suspension, so transactions of one process never interleave and a
  success is only reported after its commit. WAL, ``synchronous`` from the settings (NORMAL by
  default), ``busy_timeout`` so that another process' short write (the CLI) is waited for.
* ``PostgresRunner``: a psycopg_pool ``AsyncConnectionPool`` (autocommit connections, every hot
  statement prepared on first use, no per-checkout ping: a broken connection is dropped by the
  pool when it comes back in a bad state, and idle connections are recycled after ``max_idle``;
  its size is ``SIPPHONES_DATABASE_POOL_SIZE``). Phone creates of one account go in groups
  (``storage.raw.pg_group``: one statement, one lock of the account row, one commit per group).

``SqliteRunner`` lives in ``storage.raw.sqlite``, ``PostgresRunner`` in ``storage.raw.postgres``, their
statements in ``storage.raw.statements``, the row mappers in ``storage.raw.rows``. The SQLAlchemy
paths (admin and CLI operations, monitor, search) are in ``storage.alchemy``.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable, Callable, Protocol, Sequence, TypeVar

from sipphones.repository import DuplicateKey, MissingReference
from sipphones.storage.pragmas import PostgresTuning, SqlitePragmas

T = TypeVar("T")

# --- constraint violations and retries (both drivers, and SQLAlchemy's wrapped errors) -------

# SQLite's extended result codes (``sqlite3.IntegrityError.sqlite_errorname``) and PostgreSQL's
# SQLSTATEs (``psycopg.Error.sqlstate``) of the two constraint kinds a write can hit.
_UNIQUE = frozenset(("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "23505"))
_FOREIGN_KEY = frozenset(("SQLITE_CONSTRAINT_FOREIGNKEY", "23503"))
# PostgreSQL's "run the transaction again" (serialization_failure, deadlock_detected): nothing of
# the failed attempt is stored.
RETRY_SQLSTATES = frozenset(("40001", "40P01"))
MAX_ATTEMPTS = 5        # attempts in all at a transaction PostgreSQL asks to run again
RETRY_PAUSE = 0.005     # seconds: the n-th retry first waits a random 0 .. n x this


def constraint_error(error: BaseException) -> Exception | None:
    """What a driver's integrity error means to the domain: DuplicateKey for a unique key,
    MissingReference for a foreign key (told apart by the driver's error code, never by its
    text); None for any other error (a bug, not the client's doing: raised as it is)."""
    code = getattr(error, "sqlite_errorname", None) or getattr(error, "sqlstate", None)
    if code in _UNIQUE:
        return DuplicateKey(str(error).splitlines()[0])
    if code in _FOREIGN_KEY:
        return MissingReference(str(error).splitlines()[0])
    return None


def asks_retry(error: BaseException) -> bool:
    """True for PostgreSQL's deadlock / serialization failure, raw (psycopg) or wrapped by
    SQLAlchemy (``.orig``)."""
    return getattr(getattr(error, "orig", error), "sqlstate", None) in RETRY_SQLSTATES


async def retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, run again (at most MAX_ATTEMPTS times in all, after a short random pause)
    while it fails with an error PostgreSQL asks to retry; each attempt must be a whole
    transaction (or one autocommit statement)."""
    for n in range(1, MAX_ATTEMPTS + 1):
        try:
            return await attempt()
        except Exception as e:
            if n == MAX_ATTEMPTS or not asks_retry(e):
                raise
        await asyncio.sleep(random.uniform(0, RETRY_PAUSE * n))
    raise AssertionError("unreachable")


class Transaction(Protocol):
    async def execute(self, sql: str, params: Sequence[Any]) -> int: ...   # the row count


class Runner(Protocol):
    dialect: str

    async def one(self, sql: str, params: Sequence[Any]) -> tuple | None: ...
    async def all(self, sql: str, params: Sequence[Any]) -> list[tuple]: ...
    async def write(self, sql: str, params: Sequence[Any]) -> int: ...   # one statement, atomic
    async def close(self) -> None: ...



def matchable(*keys: str | None) -> bool:
    """False when a lookup key cannot match any stored row.

    Keys come straight from clients (path ids, search keys, client ids). PostgreSQL refuses a NUL
    character in a text parameter (an error, not "no row"), and nothing stored ever contains one,
    so such a lookup is answered "not found" without asking the database.
    """
    for k in keys:  # a loop, not any() over a generator: called several times per request
        if k and "\x00" in k:
            return False
    return True


def runner_for(url: str, pragmas: SqlitePragmas = SqlitePragmas(),
               pools: PostgresTuning = PostgresTuning()) -> Runner:
    from sqlalchemy.engine import make_url

    from sipphones.storage.raw.postgres import PostgresRunner
    from sipphones.storage.raw.sqlite import SqliteRunner

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return SqliteRunner(u.database or ":memory:", pragmas)
    return PostgresRunner(u.set(drivername="postgresql").render_as_string(hide_password=False),
                          min_size=min(2, pools.hot), max_size=pools.hot)
