"""The hot path's SQLite runner: blocking ``sqlite3`` on the event loop, writes in group commits
(see ``storage.raw.runner`` for why the hot path has its own drivers)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any, Callable, NamedTuple, Sequence, TypeVar

from sipphones.repository import DuplicateKey, MissingReference
from sipphones.storage.pragmas import SqlitePragmas
from sipphones.storage.raw.runner import constraint_error

T = TypeVar("T")


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
