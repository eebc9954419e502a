"""The hot path's PostgreSQL runner: a psycopg_pool pool of autocommit connections, statements
prepared on first use (see ``storage.raw.runner``)."""

from __future__ import annotations

import asyncio
import random
from typing import Any, Awaitable, Callable, Sequence, TypeVar

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
