"""The Repository (``sipphones.repository``) over SQLite or PostgreSQL: the request hot path on the
raw drivers (``storage.raw``) and everything else on SQLAlchemy Core (``storage.alchemy``), one
store behind both."""

from __future__ import annotations

from sipphones.storage.alchemy.grants import GrantStore
from sipphones.storage.alchemy.repository import AlchemyRepository
from sipphones.storage.alchemy.state import StateRows
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.database import async_engine
from sipphones.storage.pragmas import PostgresTuning, SqlitePragmas
from sipphones.storage.raw.pg_group import GroupedCreates
from sipphones.storage.raw.repository import RawRepository
from sipphones.storage.raw.runner import Runner, runner_for
from sipphones.storage.raw.statements import SQL_INSERT_PHONE_COUNTED, sql_insert_phones_counted


class SqlRepository(RawRepository, AlchemyRepository, GrantStore, StateRows):
    """``engine`` (SQLAlchemy) serves the admin, CLI, monitor and search paths; ``hot`` (raw
    driver, see storage.raw) serves the per-request statements."""

    def __init__(self, engine, cipher: PasswordCipher, hot: Runner, group_creates: int = PostgresTuning().group):
        self.engine = engine
        self.cipher = cipher
        self.hot = hot
        self.sqlite = engine.dialect.name == "sqlite"
        # PostgreSQL: phone creates in groups per account (SQLite groups every write already)
        self.creates = (None if self.sqlite else
                        GroupedCreates(hot, SQL_INSERT_PHONE_COUNTED, sql_insert_phones_counted, group_creates))

    @classmethod
    def from_url(cls, url: str, cipher: PasswordCipher, pragmas: SqlitePragmas = SqlitePragmas(),
                 pools: PostgresTuning = PostgresTuning()) -> "SqlRepository":
        """``pragmas``: the settings of SQLite connections (ignored for PostgreSQL); ``pools``: the
        sizes of the PostgreSQL connection pools (ignored for SQLite)."""
        engine, hot = async_engine(url, pragmas, pools), runner_for(url, pragmas, pools)
        if hasattr(hot, "flush"):  # SQLite: both paths share the file's one write lock
            engine.before_write = hot.flush
        return cls(engine, cipher, hot, pools.group)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.hot.dialect

    async def ping(self) -> None:
        """One round trip to the database (the health check)."""
        await self.hot.one("SELECT 1", ())

    async def close(self) -> None:
        await self.hot.close()
        await self.engine.dispose()
