"""The settings every SQLite connection of the service opens with, in one place; and the sizes of
the PostgreSQL pools and groups (``PostgresTuning``).

Both the request hot path (``storage.raw``, raw ``sqlite3``) and the SQLAlchemy engine
(``storage.database``) run these statements on each new connection."""

from __future__ import annotations

from typing import NamedTuple

SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_WAL_AUTOCHECKPOINT = 1000   # SQLite's own default, in WAL pages


class SqlitePragmas(NamedTuple):
    """``synchronous``: NORMAL (WAL: durable once checkpointed) or FULL, EXTRA, OFF.

    ``wal_autocheckpoint``: the number of WAL pages after which a connection that commits runs a
    checkpoint itself, inside its COMMIT (SQLite's default, 1000). ``sipphones serve`` raises it
    for its workers while its own checkpoint process (``storage.checkpoints``) runs, so that the
    checkpoint's writes and fsyncs stay out of the event loops that serve requests; 0 turns
    automatic checkpoints off."""

    synchronous: str = "NORMAL"
    wal_autocheckpoint: int = DEFAULT_WAL_AUTOCHECKPOINT

    def statements(self, busy_timeout_ms: int) -> list[str]:
        if self.synchronous not in SYNCHRONOUS_LEVELS:  # it goes into a statement: SQLite's words only
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, not {self.synchronous!r}")
        return [
            f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={self.synchronous}",
            f"PRAGMA wal_autocheckpoint={int(self.wal_autocheckpoint)}",
            "PRAGMA foreign_keys=ON",
        ]


class PostgresTuning(NamedTuple):
    """PostgreSQL connections per process: ``hot``, the most the request hot path's pool opens
    (``storage.raw.postgres``, psycopg_pool: it keeps them under load); ``admin``, the connections
    the SQLAlchemy pool holds, with no overflow (``storage.database.async_engine``). ``group``: the
    most phone creates of one account written in one statement (``storage.raw.pg_group``; 1: each
    alone)."""

    hot: int = 10
    admin: int = 4
    group: int = 64
