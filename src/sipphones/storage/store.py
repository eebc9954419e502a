"""The Repository (``sipphones.repository``) over SQLite or PostgreSQL: the request hot path on the
raw drivers (``storage.raw``) and everything else on SQLAlchemy Core (``storage.alchemy``), one
store behind both."""

from __future__ import annotations

from sipphones.storage.alchemy.repository import AlchemyRepository
from sipphones.storage.alchemy.state import StateRows
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.database import async_engine
from sipphones.storage.pragmas import SqlitePragmas
from sipphones.storage.raw.repository import RawRepository
from sipphones.storage.raw.runner import Runner, runner_for


class SqlRepository(RawRepository, AlchemyRepository, StateRows):
    """``engine`` (SQLAlchemy) serves the admin, CLI, monitor and search paths; ``hot`` (raw
    driver, see storage.raw) serves the per-request statements."""

    def __init__(self, engine, cipher: PasswordCipher, hot: Runner):
        self.engine = engine
        self.cipher = cipher
        self.hot = hot
        self.sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str, cipher: PasswordCipher, pragmas: SqlitePragmas = SqlitePragmas()) -> "SqlRepository":
        """``pragmas``: the settings of SQLite connections (ignored for PostgreSQL)."""
        engine, hot = async_engine(url, pragmas), runner_for(url, pragmas)
        if hasattr(hot, "flush"):  # SQLite: both paths share the file's one write lock
            engine.before_write = hot.flush
        return cls(engine, cipher, hot)

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
