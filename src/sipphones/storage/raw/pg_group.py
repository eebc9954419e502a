"""PostgreSQL group commit of phone creates: the creates of one account that arrive while one of
its groups is being written go together in the next statement.

Why: a create also adds one to its account's ``phone_count`` (``storage.counts``), so every create
of an account locks that one row until its commit, and a commit waits for its WAL flush: the
creates of one account are written one commit after the other, whatever the pool size. A group of
N creates is one statement, one row lock and one commit:

    WITH added AS (INSERT INTO sip_phones (...) VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING id)
    , counted AS (UPDATE accounts SET phone_count = phone_count + (SELECT count(*) FROM added) WHERE id = ?)
    SELECT id FROM added

A row left out by ``ON CONFLICT DO NOTHING`` hit a unique key (the account's address, a duplicate
in the same group included): its writer gets DuplicateKey, as the single insert gives it. The lock
order is the single insert's: the phone rows, then the account row, then the foreign-key checks at
the end of the statement. When the group's statement fails as a whole on a constraint (a foreign
key: a user or the account deleted meanwhile) or is picked as a deadlock victim, nothing of it is
stored and each create of it runs again alone (``PostgresRunner.write``), so that each writer gets
its own answer; any other failure (the connection lost) is every writer's error. At most one group
per account is written at a time by a process; a lone create is written alone, at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence

from sipphones.repository import DuplicateKey
from sipphones.storage.raw.runner import asks_retry

MAX_GROUP = 64   # creates per statement (x 21 parameters: far below PostgreSQL's 65,535)


class GroupedCreates:
    """``await create(key, params)``: ``single_sql`` with ``params``, or that row in a group of
    ``key``'s creates (``group_sql(n)``: the statement of n rows, parameters the rows' then
    ``key``). ``params[0]`` is the row's id."""

    def __init__(self, runner, single_sql: str, group_sql: Callable[[int], str], max_group: int = MAX_GROUP):
        self.runner = runner
        self.single_sql = single_sql
        self.group_sql = group_sql
        self.max_group = max(1, max_group)
        self._waiting: dict[str, list[tuple[Sequence[Any], asyncio.Future]]] = {}
        self._writing: set[str] = set()
        self._scheduled: set[str] = set()
        self._statements: dict[int, str] = {}
        self._tasks: set[asyncio.Task] = set()
        self.groups = 0     # statements of more than one create (for tests and benchmarks)

    async def create(self, key: str, params: Sequence[Any]) -> None:
        if self.max_group == 1:
            await self.runner.write(self.single_sql, params)
            return
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._waiting.setdefault(key, []).append((params, done))
        if key not in self._writing and key not in self._scheduled:
            self._scheduled.add(key)
            loop.call_soon(self._start, key)  # the end of this loop iteration: its creates join
        await done

    def _start(self, key: str) -> None:
        self._scheduled.discard(key)
        waiting = self._waiting.get(key)
        if key in self._writing or not waiting:
            return
        group, rest = waiting[:self.max_group], waiting[self.max_group:]
        if rest:
            self._waiting[key] = rest
        else:
            del self._waiting[key]
        self._writing.add(key)
        task = asyncio.ensure_future(self._write(key, group))
        self._tasks.add(task)                 # held until done (the loop keeps only a weak reference)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, key: str, group: list[tuple[Sequence[Any], asyncio.Future]]) -> None:
        try:
            if len(group) == 1:
                await self._alone(group)
            else:
                await self._together(key, group)
        finally:
            self._writing.discard(key)
            if self._waiting.get(key) and key not in self._scheduled:
                self._scheduled.add(key)
                asyncio.get_running_loop().call_soon(self._start, key)

    async def _together(self, key: str, group: list[tuple[Sequence[Any], asyncio.Future]]) -> None:
        from psycopg import errors

        n = len(group)
        sql = self._statements.get(n)
        if sql is None:
            sql = self._statements[n] = self.group_sql(n)
        params: list[Any] = []
        for row, _ in group:
            params.extend(row)
        params.append(key)
        try:
            rows = await self.runner.all(sql, params)
        except errors.IntegrityError:
            await self._alone(group)     # nothing stored: each create alone, for its own answer
            return
        except errors.OperationalError as e:
            if asks_retry(e):
                await self._alone(group)
                return
            _fail(group, e)
            return
        except BaseException as e:
            _fail(group, e)
            if not isinstance(e, Exception):
                raise
            return
        self.groups += 1
        added = {r[0] for r in rows}
        for row, done in group:
            if done.done():
                continue
            if row[0] in added:
                done.set_result(None)
            else:
                done.set_exception(DuplicateKey("duplicate key value violates unique constraint"))

    async def _alone(self, group: list[tuple[Sequence[Any], asyncio.Future]]) -> None:
        async def one(row: Sequence[Any], done: asyncio.Future) -> None:
            try:
                await self.runner.write(self.single_sql, row)
            except Exception as e:  # noqa: BLE001 - this create's own error, for its writer
                if not done.done():
                    done.set_exception(e)
            else:
                if not done.done():
                    done.set_result(None)

        await asyncio.gather(*(one(row, done) for row, done in group))


def _fail(group: list[tuple[Sequence[Any], asyncio.Future]], error: BaseException) -> None:
    for _, done in group:
        if not done.done():
            done.set_exception(error)
