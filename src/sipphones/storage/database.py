"""Database URLs, engines and schema migration (Alembic)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUrlError(ValueError):
    pass


def _url(url: str, *, asynchronous: bool):
    try:
        u = make_url(url)
    except Exception:
        raise DatabaseUrlError(f"'{url}' is not a database URL (try sqlite:///path/file.db or postgresql://host/db)") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+psycopg")
    raise DatabaseUrlError(f"unsupported database '{backend}': use sqlite:/// or postgresql://")


def is_sqlite(url: str) -> bool:
    return _url(url, asynchronous=False).get_backend_name() == "sqlite"


def _sqlite_pragmas(engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def _ensure_sqlite_dir(url) -> None:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


# Engines hide statement parameters in their errors and logs: a failed INSERT must never put a
# client's data (e-mail addresses, encrypted passwords) into a log line.


def sync_engine(url: str, synchronous: str = "NORMAL") -> Engine:
    u = _url(url, asynchronous=False)
    if u.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(u)
        engine = create_engine(u, hide_parameters=True)
        _sqlite_pragmas(engine, synchronous)
        return engine
    return create_engine(u, pool_pre_ping=True, hide_parameters=True)


def async_engine(url: str, synchronous: str = "NORMAL") -> AsyncEngine:
    u = _url(url, asynchronous=True)
    if u.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(u)
        engine = create_async_engine(u, pool_size=4, max_overflow=4, hide_parameters=True)
        _sqlite_pragmas(engine.sync_engine, synchronous)
        return engine
    return create_async_engine(u, pool_size=8, max_overflow=8, pool_pre_ping=True, hide_parameters=True)


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["sqlalchemy_url"] = url
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(url: str) -> str:
    """Bring the schema to the newest revision (a no-op when it is there). Returns the revision."""
    from alembic import command

    engine = sync_engine(url)
    try:
        head = head_revision()
        if current_revision(engine) == head:
            return head
        cfg = _alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return head
    finally:
        engine.dispose()
