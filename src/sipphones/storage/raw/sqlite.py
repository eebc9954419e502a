"""Raw-driver statement runners for the request hot path (auth, user lookup, phone reads/writes,
list pages).

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
  pool when it comes back in a bad state, and idle connections are recycled after ``max_idle``).

The SQLAlchemy paths (schema, migrations, admin and CLI operations, search) stay in ``sql.py``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from typing import Any, Awaitable, Callable, NamedTuple, Protocol, Sequence, TypeVar

from sipphones.storage.pragmas import SqlitePragmas
from sipphones.repository import DuplicateKey, MissingReference

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


# --- SQLite ---------------------------------------------------------------------------------

def _sqlite_execute(conn: sqlite3.Connection):
    def execute(sql: str, params: Sequence[Any]) -> int:
        try:
            return conn.execute(sql, params).rowcount
        except sqlite3.IntegrityError as e:
            raise (constraint_error(e) or e) from None
    return execute


class Tally(NamedTuple):
    """An additive counter update that goes with a write: ``sql`` takes ``(delta, key)``.

    The writes of one group add up their tallies per ``(sql, key)`` and the group runs each sum
    once, before its COMMIT: N creates of one account in a group update its phone count once."""

    sql: str
    key: Any
    delta: int


class SqliteRunner:
    """Blocking ``sqlite3`` on the event loop, with group commit for writes.

    Reads use their own connection (autocommit: each statement sees the last committed state;
    in WAL mode reads never wait for writers).

    Writes are *submitted*: ``write(sql, params)`` queues one statement, ``write_fn(fn)`` a
    function that runs the write's statements through the ``execute`` it is given and returns a
    result; both wait. The first submission of a loop iteration schedules a flush at the end of
    that iteration (``call_soon``); the flush takes the write lock (``BEGIN IMMEDIATE``), runs
    every queued write, runs the group's summed tallies (``Tally``), ``COMMIT``s and only then
    resumes the writers, in order. So a success is never reported for a write that is not
    committed; one commit (the WAL write, ~50 µs of CPU) serves every create/update/delete of an
    iteration; and the file's write lock, shared with the other worker processes, is held only
    for the statements themselves, never while request code runs.

    A failing write rolls back only itself and gets its error: a ``write_fn`` runs in its own
    ``SAVEPOINT``; a one-statement ``write`` needs none, since SQLite undoes a statement that
    fails a constraint and keeps the transaction (the ABORT rule; no table here declares another
    conflict rule). Any other error of a one-statement write (I/O, disk full: SQLite may have
    rolled the whole transaction back) fails the group as a whole, every writer learns it.

    The lock is taken without blocking the loop: when another process holds it, the flush is
    retried a little later (new writes keep joining the queue) until ``busy_timeout`` has passed,
    after which the queued writers fail with the "database is locked" error.
    """

    dialect = "sqlite"
    RETRY_DELAY = 0.0005  # seconds between attempts at the write lock held by another process

    def __init__(self, path: str, pragmas: SqlitePragmas = SqlitePragmas(), busy_timeout_ms: int = 10000):
        self.path = path
        self.pragmas = pragmas
        self.busy_timeout_ms = busy_timeout_ms
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        # (fn, sql, params, tally, done): fn for write_fn, else sql and params for one statement
        self._queue: list[tuple[Callable | None, str, Sequence[Any], Tally | None, asyncio.Future]] = []
        self._scheduled = False
        self._busy_since: float | None = None
        self.commits = 0   # groups committed (for tests and benchmarks)

    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        # isolation_level=None: autocommit; writes open their own BEGIN IMMEDIATE.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=64)
        for statement in self.pragmas.statements(busy_timeout_ms):
            conn.execute(statement)
        return conn

    def _read_connection(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = self._connect(self.busy_timeout_ms)
        return self._reader

    async def one(self, sql: str, params: Sequence[Any]) -> tuple | None:
        return self._read_connection().execute(sql, params).fetchone()

    async def all(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        return self._read_connection().execute(sql, params).fetchall()

    async def write(self, sql: str, params: Sequence[Any], *, tally: Tally | None = None) -> int:
        """One statement, committed (in a group) before this returns; the row count. DuplicateKey
        (unique key), MissingReference (foreign key) or sqlite3.IntegrityError (any other) when it
        fails a constraint (nothing of it stored). ``tally`` is applied only when the statement
        succeeded, in the same transaction."""
        return await self._submit(None, sql, params, tally)

    async def write_fn(self, fn: Callable[[Callable[[str, Sequence[Any]], int]], T]) -> T:
        """Run ``fn(execute)`` as one atomic write of the next group; its result once committed.
        ``execute(sql, params)`` returns the row count and raises as ``write`` on a constraint."""
        return await self._submit(fn, "", (), None)

    def _submit(self, fn: Callable | None, sql: str, params: Sequence[Any], tally: Tally | None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.append((fn, sql, params, tally, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_soon)
        return done

    def _flush_soon(self) -> None:
        self._scheduled = False
        if not self._queue:
            return
        if not self._flush(block=False):
            loop = asyncio.get_running_loop()
            self._scheduled = True
            loop.call_later(self.RETRY_DELAY, self._flush_soon)

    def flush(self) -> None:
        """Commit every queued write now, waiting for the write lock if another process holds
        it (the blocking SQLAlchemy engine calls this before its own write transactions)."""
        if self._queue:
            self._flush(block=True)

    def _flush(self, *, block: bool) -> bool:
        """False when the write lock is held elsewhere (non-blocking attempt, retried later)."""
        try:
            if self._writer is None:
                self._writer = self._connect(0)
            conn = self._writer
            if block:
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                if block:
                    conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.OperationalError as e:  # the write lock is held by another process
            now = time.monotonic()
            if self._busy_since is None:
                self._busy_since = now
            if not block and now - self._busy_since < self.busy_timeout_ms / 1000:
                return False
            self._fail_all(e)
            return True
        except Exception as e:  # noqa: BLE001 - e.g. an unusable connection: fail this group, reconnect next time
            self._discard_writer()
            self._fail_all(e)
            return True
        self._busy_since = None
        queue, self._queue = self._queue, []
        execute = _sqlite_execute(conn)
        outcomes: list[tuple[asyncio.Future, bool, Any]] = []
        tallies: dict[tuple[str, Any], int] = {}
        try:
            for fn, sql, params, tally, done in queue:
                if fn is None:  # one statement: atomic by itself
                    try:
                        result = execute(sql, params)
                    except (DuplicateKey, MissingReference, sqlite3.IntegrityError) as e:
                        # a constraint: the statement undone by SQLite, the transaction goes on
                        outcomes.append((done, False, e))
                        continue
                    if tally is not None:
                        key = (tally.sql, tally.key)
                        tallies[key] = tallies.get(key, 0) + tally.delta
                    outcomes.append((done, True, result))
                    continue
                conn.execute("SAVEPOINT w")
                try:
                    result = fn(execute)
                except Exception as e:  # noqa: BLE001 - this write's own error, for its writer
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    outcomes.append((done, False, e))
                else:
                    conn.execute("RELEASE w")
                    outcomes.append((done, True, result))
            for (sql, key), delta in tallies.items():
                if delta:
                    conn.execute(sql, (delta, key))
            conn.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - the group failed as a whole: every writer learns it
            self._discard_writer()
            for *_, done in queue:
                if not done.done():
                    done.set_exception(e)
            return True
        self.commits += 1
        for done, ok, value in outcomes:
            if not done.done():
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)
        return True

    def _fail_all(self, error: BaseException) -> None:
        queue, self._queue = self._queue, []
        self._busy_since = None
        for *_, done in queue:
            if not done.done():
                done.set_exception(error)

    def _discard_writer(self) -> None:
        conn, self._writer = self._writer, None
        if conn is not None:
            try:
                conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - no transaction, or the connection is unusable
                pass
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    async def close(self) -> None:
        self.flush()
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None


# --- PostgreSQL -----------------------------------------------------------------------------

class _PostgresTransaction:
    def __init__(self, conn, runner: "PostgresRunner"):
        self._conn = conn
        self._runner = runner

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        from psycopg import errors

        try:
            cur = await self._conn.execute(self._runner.sql(sql), params)
        except errors.IntegrityError as e:
            raise (constraint_error(e) or e) from None
        return cur.rowcount


class PostgresRunner:
    dialect = "postgresql"

    def __init__(self, conninfo: str, *, min_size: int = 2, max_size: int = 10, max_idle: float = 300.0):
        self.conninfo = conninfo
        self.min_size, self.max_size, self.max_idle = min_size, max_size, max_idle
        self._pool = None
        self._opening: asyncio.Lock | None = None
        self._sql: dict[str, str] = {}

    def sql(self, sql: str) -> str:
        out = self._sql.get(sql)
        if out is None:
            out = self._sql[sql] = sql.replace("?", "%s")
        return out

    async def pool(self):
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                from psycopg_pool import AsyncConnectionPool

                pool = AsyncConnectionPool(
                    self.conninfo, min_size=self.min_size, max_size=self.max_size, max_idle=self.max_idle,
                    open=False, kwargs={"autocommit": True, "prepare_threshold": 0},
                )
                await pool.open(wait=True, timeout=10.0)
                self._pool = pool
        return self._pool

    async def one(self, sql: str, params: Sequence[Any]) -> tuple | None:
        pool = self._pool or await self.pool()
        async with pool.connection() as conn:
            cur = await conn.execute(self.sql(sql), params)
            return await cur.fetchone()

    async def all(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        pool = self._pool or await self.pool()
        async with pool.connection() as conn:
            cur = await conn.execute(self.sql(sql), params)
            return await cur.fetchall()

    async def write(self, sql: str, params: Sequence[Any]) -> int:
        """One statement on an autocommit connection: atomic, one round trip, no BEGIN/COMMIT;
        run again (bounded, see ``retrying``) when PostgreSQL reports a deadlock or a
        serialization failure. DuplicateKey / MissingReference as ``constraint_error`` says."""
        from psycopg import errors

        pool = self._pool or await self.pool()
        statement = self.sql(sql)
        for n in range(1, MAX_ATTEMPTS + 1):  # ``retrying`` inlined: no closure per write
            async with pool.connection() as conn:
                try:
                    return (await conn.execute(statement, params)).rowcount
                except errors.IntegrityError as e:
                    raise (constraint_error(e) or e) from None
                except errors.OperationalError as e:  # deadlock_detected, serialization_failure among them
                    if n == MAX_ATTEMPTS or not asks_retry(e):
                        raise
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE * n))
        raise AssertionError("unreachable")

    async def transact(self, fn: Callable[[_PostgresTransaction], Awaitable[T]]) -> T:
        """``await fn(tx)`` in one transaction, committed before this returns; the whole
        transaction run again (bounded, see ``retrying``) when PostgreSQL reports a deadlock or a
        serialization failure, so ``fn`` must do nothing but its statements."""
        pool = self._pool or await self.pool()

        async def attempt() -> T:
            async with pool.connection() as conn:
                async with conn.transaction():
                    return await fn(_PostgresTransaction(conn, self))

        return await retrying(attempt)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def runner_for(url: str, pragmas: SqlitePragmas = SqlitePragmas()) -> Runner:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return SqliteRunner(u.database or ":memory:", pragmas)
    return PostgresRunner(u.set(drivername="postgresql").render_as_string(hide_password=False))
