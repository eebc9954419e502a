"""The SQLite schema snapshot (``storage.sqlite_schema``) that ``migrate`` gives a new SQLite file
instead of running Alembic must be exactly what the migrations produce.

Regenerate the snapshot after adding a migration: ``python -m tests.test_sqlite_snapshot``.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sipphones.storage import database, sqlite_schema
from sipphones.storage.database import (
    HEAD_REVISION, create_sqlite_at_head, migrate, plain_sqlite_path, sqlite_file, stored_revision,
)

SNAPSHOT = Path(sqlite_schema.__file__)
PRAGMAS = ("journal_mode", "user_version", "application_id", "page_size", "auto_vacuum", "encoding",
           "schema_version", "freelist_count", "page_count")


def migrate_with_alembic(path: Path) -> None:
    """The migrations themselves, as ``migrate`` ran them before the snapshot existed."""
    from alembic import command

    url = f"sqlite:///{path}"
    engine = database.sync_engine(url)
    try:
        cfg = database._alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def describe(path: Path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {
            "sqlite_master": conn.execute("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master "
                                          "ORDER BY rowid").fetchall(),
            "pragmas": {p: conn.execute(f"PRAGMA {p}").fetchone()[0] for p in PRAGMAS},
            "alembic_version": conn.execute("SELECT * FROM alembic_version").fetchall(),
            "integrity": conn.execute("PRAGMA integrity_check").fetchall(),
            "foreign_keys": {t: conn.execute(f"PRAGMA foreign_key_list({t})").fetchall()
                             for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")},
        }
    finally:
        conn.close()


def render_snapshot(path: Path) -> str:
    """The text of ``storage/sqlite_schema.py`` for a database migrated by Alembic."""
    conn = sqlite3.connect(path)
    try:
        statements = [sql for (sql,) in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                                                    "ORDER BY rowid")]
        (revision,), = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        (schema_version,), = conn.execute("PRAGMA schema_version").fetchall()
    finally:
        conn.close()
    head, _, _ = SNAPSHOT.read_text().partition("\nREVISION = ")
    lines = [head, f"REVISION = {revision!r}", "", "STATEMENTS = ("]
    lines += [f"    {s!r}," for s in statements]
    lines += [")", "", "# SQLite's schema cookie as the migrations leave it: one per DDL statement they ran (an",
              "# ALTER TABLE counts, so it may exceed the number of STATEMENTS).",
              f"SCHEMA_VERSION = {schema_version}", "", "# The stamp Alembic writes into the version table.",
              "STAMP = \"INSERT INTO alembic_version (version_num) VALUES ('\" + REVISION + \"')\"", ""]
    return "\n".join(lines)


def test_the_snapshot_is_the_migrated_schema_at_head(tmp_path):
    migrate_with_alembic(tmp_path / "migrated.db")
    assert sqlite_schema.REVISION == HEAD_REVISION
    assert SNAPSHOT.read_text() == render_snapshot(tmp_path / "migrated.db"), \
        "storage/sqlite_schema.py is stale: regenerate it with python -m tests.test_sqlite_snapshot"


def test_a_new_file_from_the_snapshot_is_identical_to_a_migrated_one(tmp_path):
    migrate_with_alembic(tmp_path / "migrated.db")
    assert migrate(f"sqlite:///{tmp_path / 'new' / 'fast.db'}") == HEAD_REVISION
    fast, migrated = describe(tmp_path / "new" / "fast.db"), describe(tmp_path / "migrated.db")
    assert fast == migrated
    assert fast["pragmas"]["journal_mode"] == "wal" and fast["alembic_version"] == [(HEAD_REVISION,)]


def test_an_empty_existing_file_is_created_at_head_too(tmp_path):
    (tmp_path / "empty.db").touch()
    migrate_with_alembic(tmp_path / "migrated.db")
    assert create_sqlite_at_head(str(tmp_path / "empty.db"))
    assert describe(tmp_path / "empty.db") == describe(tmp_path / "migrated.db")


def test_a_file_with_any_schema_is_left_to_alembic(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unrelated (x INTEGER)")
    conn.commit()
    conn.close()
    assert not create_sqlite_at_head(str(path))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("unrelated",)]
    conn.close()
    # migrate still brings it to the head, through Alembic (the old behaviour).
    assert migrate(f"sqlite:///{path}") == HEAD_REVISION
    assert stored_revision(f"sqlite:///{path}") == HEAD_REVISION


def test_migrate_on_a_new_file_does_not_import_alembic_or_sqlalchemy(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code = ("import sys; from sipphones.storage.database import migrate; "
            f"print(migrate({url!r}), sorted(m for m in ('alembic', 'sqlalchemy') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(Path(database.__file__).parents[2])}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert p.stdout.strip() == f"{HEAD_REVISION} []", p.stdout + p.stderr
    assert describe(tmp_path / "x.db")["alembic_version"] == [(HEAD_REVISION,)]


def test_processes_creating_one_new_file_at_once_all_succeed(tmp_path):
    # Several processes (two ``serve``s, a CLI command beside a starting server) may open the same
    # new file together: the first takes the write lock and creates the schema, the others wait
    # and find it at the head. (Through Alembic alone, some of them failed with "table exists".)
    code = "import sys; from sipphones.storage.database import migrate; print(migrate(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": str(Path(database.__file__).parents[2])}
    for n in range(3):
        url = f"sqlite:///{tmp_path / str(n) / 'new.db'}"
        procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for _ in range(4)]
        results = [(p.wait(60), *p.communicate()) for p in procs]
        assert all(rc == 0 and out.strip() == HEAD_REVISION for rc, out, _ in results), results
        assert describe(tmp_path / str(n) / "new.db")["alembic_version"] == [(HEAD_REVISION,)]


@pytest.mark.parametrize("url", [
    "sqlite:///rel/x.db", "sqlite:////abs/dir/x.db", "sqlite:////abs/a b/x@y#z.db", "sqlite:///./x.db",
    "sqlite:////abs/:memory:",
])
def test_plain_sqlite_path_is_the_file_sqlalchemy_opens(url):
    from sqlalchemy.engine import make_url

    assert plain_sqlite_path(url) == make_url(url).database


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:///a%20b.db", "sqlite:///x.db?mode=ro",
    "sqlite+pysqlite:///x.db", "postgresql://127.0.0.1/x", "foo://x/y",
])
def test_other_urls_are_left_to_sqlalchemy(url):
    assert plain_sqlite_path(url) is None


@pytest.mark.parametrize("url, path", [
    ("sqlite:////abs/dir/x.db", "/abs/dir/x.db"),            # plain: read without SQLAlchemy
    ("sqlite:///a%20b.db", "a b.db"),                        # the others: as SQLAlchemy reads them
    ("sqlite:///x.db?mode=ro", "x.db"),
    ("sqlite+pysqlite:////abs/x.db", "/abs/x.db"),
    ("sqlite://", None), ("sqlite:///:memory:", None), ("postgresql://127.0.0.1/x", None),
])
def test_sqlite_file_of_a_url(url, path):
    assert sqlite_file(url) == path


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as td:
        migrate_with_alembic(Path(td) / "migrated.db")
        SNAPSHOT.write_text(render_snapshot(Path(td) / "migrated.db"))
    print(f"wrote {SNAPSHOT}")
