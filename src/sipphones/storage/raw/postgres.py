"""The hot path's PostgreSQL runner: a psycopg_pool pool of autocommit connections, statements
prepared on first use (see ``storage.raw.runner``).

Outages (``storage.outage``): every wait is bounded (connect, pooled connection, statement) and a
database that does not answer raises ``StoreUnavailable``. A read is tried once more on another
connection (a restart leaves the pool's idle connections dead); a write is not (it may have been
stored before its connection broke: it is reported as unavailable, never as stored). The first
broken connection also has the pool test its idle ones (``check``), so that a restart costs a
few requests, not one per pooled connection."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from sipphones.storage import outage
from sipphones.storage.raw.runner import MAX_ATTEMPTS, RETRY_PAUSE, asks_retry, constraint_error, retrying

T = TypeVar("T")


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
        self._checking: asyncio.Task | None = None  # the pool's check of its idle connections
        self._open_failed_at = -1.0                  # time.monotonic() of the last failed pool opening

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
        asked = time.monotonic()
        async with self._opening:
            if self._pool is None and self._open_failed_at >= asked:
                # An attempt that ended while this request waited for it failed: answer now rather
                # than queue one more whole attempt behind each waiting request.
                raise outage.unavailable(ConnectionError("the database did not accept connections"))
            if self._pool is None:
                from psycopg_pool import AsyncConnectionPool

                kwargs = {"autocommit": True, "prepare_threshold": 0,
                          **outage.connect_args(self.conninfo, hot=True)}
                pool = AsyncConnectionPool(
                    self.conninfo, min_size=self.min_size, max_size=self.max_size, max_idle=self.max_idle,
                    open=False, kwargs=kwargs, timeout=outage.POOL_WAIT_S,
                    reconnect_timeout=outage.RECONNECT_GIVE_UP_S,
                )
                try:
                    await pool.open(wait=True, timeout=outage.POOL_WAIT_S)
                except Exception as e:
                    self._open_failed_at = time.monotonic()
                    await pool.close()  # no pool left trying to connect in the background
                    raise (outage.unavailable(e) if outage.is_outage(e) else e) from None
                self._pool = pool
        return self._pool

    def _outage(self, error: BaseException) -> Exception:
        """``StoreUnavailable`` for an outage (and the pool's idle connections tested, once at a
        time); ``error`` itself otherwise."""
        if not outage.is_outage(error):
            return error  # type: ignore[return-value]
        pool = self._pool
        if pool is not None and (self._checking is None or self._checking.done()):
            self._checking = asyncio.get_running_loop().create_task(pool.check())
            self._checking.add_done_callback(_quiet)
        return outage.unavailable(error)

    async def one(self, sql: str, params: Sequence[Any]) -> tuple | None:
        for n in (1, 2):  # a read once more on another connection after an outage error
            try:
                pool = self._pool or await self.pool()
                async with pool.connection() as conn:
                    cur = await conn.execute(self.sql(sql), params)
                    return await cur.fetchone()
            except Exception as e:
                error = self._outage(e)
                if error is e or n == 2 or _waited(e):
                    raise error from None
        raise AssertionError("unreachable")

    async def all(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        for n in (1, 2):
            try:
                pool = self._pool or await self.pool()
                async with pool.connection() as conn:
                    cur = await conn.execute(self.sql(sql), params)
                    return await cur.fetchall()
            except Exception as e:
                error = self._outage(e)
                if error is e or n == 2 or _waited(e):
                    raise error from None
        raise AssertionError("unreachable")

    async def write(self, sql: str, params: Sequence[Any]) -> int:
        """One statement on an autocommit connection: atomic, one round trip, no BEGIN/COMMIT;
        run again (bounded, see ``retrying``) when PostgreSQL reports a deadlock or a
        serialization failure. DuplicateKey / MissingReference as ``constraint_error`` says."""
        from psycopg import errors

        statement = self.sql(sql)
        for n in range(1, MAX_ATTEMPTS + 1):  # ``retrying`` inlined: no closure per write
            try:
                pool = self._pool or await self.pool()
                async with pool.connection() as conn:
                    try:
                        return (await conn.execute(statement, params)).rowcount
                    except errors.IntegrityError as e:
                        raise (constraint_error(e) or e) from None
            except (errors.OperationalError, errors.InterfaceError) as e:  # deadlock, serialization failure, outage
                if n == MAX_ATTEMPTS or not asks_retry(e):
                    raise self._outage(e) from None
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE * n))
        raise AssertionError("unreachable")

    async def transact(self, fn: Callable[[_PostgresTransaction], Awaitable[T]]) -> T:
        """``await fn(tx)`` in one transaction, committed before this returns; the whole
        transaction run again (bounded, see ``retrying``) when PostgreSQL reports a deadlock or a
        serialization failure, so ``fn`` must do nothing but its statements."""
        from psycopg import errors

        pool = self._pool or await self.pool()

        async def attempt() -> T:
            async with pool.connection() as conn:
                async with conn.transaction():
                    return await fn(_PostgresTransaction(conn, self))

        try:
            return await retrying(attempt)
        except (errors.OperationalError, errors.InterfaceError) as e:
            raise self._outage(e) from None

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _waited(error: BaseException) -> bool:
    """True when ``error`` came after waiting the pool's whole deadline (no connection in time):
    trying again would double a wait the client already paid."""
    from psycopg_pool import PoolTimeout

    return isinstance(error, PoolTimeout)


def _quiet(task: asyncio.Task) -> None:
    """The pool's check failed too (the database is still down): nothing to report, the next
    outage error starts another."""
    if not task.cancelled():
        task.exception()
