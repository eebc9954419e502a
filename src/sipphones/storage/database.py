"""Database URLs, engines and schema migration (Alembic)."""

from __future__ import annotations

from pathlib import Path

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# SQLAlchemy is imported by the functions that use it: ``serve`` migrates a plain SQLite file
# with the standard library alone (see ``migrate``), and with several workers its supervisor
# process never needs SQLAlchemy at all.

from sipphones.storage import files
from sipphones.storage.pragmas import PostgresTuning, SqlitePragmas

MIGRATIONS = Path(__file__).parent / "migrations"

# The newest revision under migrations/versions (a test checks it against Alembic's own answer):
# a database already at this revision is opened without importing Alembic (a faster start).
HEAD_REVISION = "0005"


class DatabaseUrlError(ValueError):
    pass


def _url(url: str, *, asynchronous: bool):
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        raise DatabaseUrlError(f"'{url}' is not a database URL (try sqlite:///path/file.db or postgresql://host/db)") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        return u.set(drivername="sqlite")  # asynchronous too: see async_engine (no aiosqlite)
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+psycopg")
    raise DatabaseUrlError(f"unsupported database '{backend}': use sqlite:/// or postgresql://")


def is_sqlite(url: str) -> bool:
    return _url(url, asynchronous=False).get_backend_name() == "sqlite"


def _sqlite_pragmas(engine, pragmas: SqlitePragmas) -> None:
    from sqlalchemy import event

    statements = pragmas.statements(busy_timeout_ms=10000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        for statement in statements:
            cur.execute(statement)
        cur.close()


def _ensure_sqlite_dir(url) -> None:
    if url.database and url.database != ":memory:":
        files.private_dir(Path(url.database).parent)


def private_sqlite_file(path: str) -> None:
    """Make the SQLite file ``path`` private before SQLite opens it: its directory is created 0700
    when missing, the file itself is created empty with mode 0600 (an empty file is an empty
    database; SQLite then gives its ``-wal`` and ``-shm`` files that mode too), and an existing
    file, ``-wal`` or ``-shm`` that other users may read is made 0600 (``storage.files``)."""
    file = Path(path)
    files.private_dir(file.parent)
    if files.create_private_file(file):
        return
    for name in (file.name, file.name + "-wal", file.name + "-shm"):
        files.make_private(file.with_name(name))


# Engines hide statement parameters in their errors and logs: a failed INSERT must never put a
# client's data (e-mail addresses, encrypted passwords) into a log line.


def sync_engine(url: str, pragmas: SqlitePragmas = SqlitePragmas()) -> Engine:
    from sqlalchemy import create_engine

    u = _url(url, asynchronous=False)
    if u.get_backend_name() == "sqlite":
        _ensure_sqlite_dir(u)
        engine = create_engine(u, hide_parameters=True)
        _sqlite_pragmas(engine, pragmas)
        return engine
    return create_engine(u, pool_pre_ping=True, hide_parameters=True)


def async_engine(url: str, pragmas: SqlitePragmas = SqlitePragmas(), pools: PostgresTuning = PostgresTuning()):
    """The engine of the repository's SQLAlchemy paths (admin, CLI, monitor, search).

    SQLite: a blocking engine behind the async interface (``BlockingAsyncEngine``). A SQLite
    statement costs microseconds, so running it on the event loop is cheaper than a thread hop
    (aiosqlite), and, above all, a transaction then never spans an ``await``: the request hot path
    (``storage.raw``, blocking ``sqlite3`` on the loop) can never wait on the file's write lock
    held by a transaction of this same process that needs the loop to finish.
    PostgreSQL: SQLAlchemy's async engine over psycopg (the hot path has its own pool), its pool
    holding ``pools.admin`` connections and no overflow: SQLAlchemy closes an overflow connection
    when it comes back, so under load an overflow meant a new PostgreSQL backend (a fork, its
    authentication and catalog caches) for about every third request; a full pool makes a request
    wait for a connection instead (``pool_timeout``).
    """
    u = _url(url, asynchronous=False)
    if u.get_backend_name() == "sqlite":
        return BlockingAsyncEngine(sync_engine(url, pragmas))
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(_url(url, asynchronous=True), pool_size=pools.admin, max_overflow=0,
                               pool_pre_ping=True, pool_timeout=10, hide_parameters=True)


class BlockingConnection:
    """The slice of ``AsyncConnection`` the repository uses, over a blocking connection."""

    def __init__(self, conn: Connection):
        self.sync_connection = conn

    async def execute(self, statement, parameters: Any = None):
        return self.sync_connection.execute(statement, parameters)


class BlockingAsyncEngine:
    """The slice of ``AsyncEngine`` the repository uses (``connect``, ``begin``, ``dispose``,
    ``dialect``), running each statement synchronously on the calling thread."""

    def __init__(self, engine: Engine):
        self.sync_engine = engine
        self.dialect = engine.dialect
        # Called before each write transaction: commits the hot path's open write group (see
        # storage.raw.sqlite.SqliteRunner.flush) so that this blocking write never waits on it.
        self.before_write = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[BlockingConnection]:
        with self.sync_engine.connect() as conn:
            yield BlockingConnection(conn)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[BlockingConnection]:
        if self.before_write is not None:
            self.before_write()
        with self.sync_engine.begin() as conn:
            yield BlockingConnection(conn)

    async def dispose(self) -> None:
        self.sync_engine.dispose()


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
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def plain_sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///path`` URL, read without SQLAlchemy; None for any other
    URL (another database, a query string, %-escapes, an in-memory database). SQLAlchemy's
    ``make_url`` finds the same file in such a URL (a test checks it)."""
    if not url.startswith("sqlite:///") or "?" in url or "%" in url:
        return None
    path = url[len("sqlite:///"):]
    return path if path and path != ":memory:" else None


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database and for any other
    database. A plain ``sqlite:///path`` is read without SQLAlchemy (``plain_sqlite_path``)."""
    path = plain_sqlite_path(url)
    if path is not None or not url.startswith("sqlite"):
        return path
    u = _url(url, asynchronous=False)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return u.database


def _sqlite_file_revision(path: str) -> str | None:
    import sqlite3

    if not Path(path).exists():
        return None
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table
        return None
    finally:
        conn.close()
    return row[0] if row else None


def stored_revision(url: str) -> str | None:
    """The revision recorded in the database (None: no schema yet), read through the plain driver."""
    path = sqlite_file(url)
    if path is not None:
        return _sqlite_file_revision(path)
    if is_sqlite(url):  # in memory: nothing stored yet
        return None
    engine = sync_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def create_sqlite_at_head(path: str) -> bool:
    """Give a SQLite file without any schema (a new file, or an empty one) the schema the
    migrations produce, stamped at ``HEAD_REVISION``, in one transaction, with the standard
    library alone (``storage.sqlite_schema``: Alembic's own statements, checked by a test against
    a migrated file). False, and the file unchanged, when it has any schema already or the
    snapshot is not of ``HEAD_REVISION``: ``migrate`` then runs Alembic as before."""
    import sqlite3

    from sipphones.storage import sqlite_schema

    if sqlite_schema.REVISION != HEAD_REVISION:
        return False
    private_sqlite_file(path)
    conn = sqlite3.connect(path, isolation_level=None)  # transactions as written below
    try:
        # The settings of the engine Alembic's migrations run on (sync_engine): WAL is a
        # property of the file, kept by every later connection.
        for statement in SqlitePragmas().statements(busy_timeout_ms=10000):  # busy_timeout first: a
            conn.execute(statement)                                           # concurrent creator is waited for
        conn.execute("BEGIN IMMEDIATE")  # the write lock first: a concurrent creator waits, then sees the schema
        try:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                conn.execute("ROLLBACK")
                return False
            for statement in sqlite_schema.STATEMENTS:
                conn.execute(statement)
            # The cookie the migrations' DDL leaves (an ALTER TABLE they ran counts once more than
            # the final CREATE TABLE here), set within the creating transaction (tests/test_sqlite_snapshot.py).
            conn.execute(f"PRAGMA schema_version = {int(sqlite_schema.SCHEMA_VERSION)}")
            conn.execute(sqlite_schema.STAMP)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True
    finally:
        conn.close()


def migrate(url: str) -> str:
    """Bring the schema to the newest revision (a no-op when it is there). Returns the revision.

    A plain SQLite file without any schema is created at the head from the snapshot of the
    migrated schema (``create_sqlite_at_head``), without importing Alembic and SQLAlchemy; any
    other database, and a SQLite file that has a schema, is migrated by Alembic. A SQLite file is
    made private first (``private_sqlite_file``)."""
    file = sqlite_file(url)
    if file is not None:
        private_sqlite_file(file)
    path = plain_sqlite_path(url)
    revision = stored_revision(url)
    if revision == HEAD_REVISION:
        return HEAD_REVISION
    if path is not None and revision is None:
        import sqlite3

        try:
            if create_sqlite_at_head(path):
                return HEAD_REVISION
        except sqlite3.Error:
            pass  # rolled back: Alembic tries, and reports the problem as it always did
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
