"""What every command shares: settings from options, the store, output in text or JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, TypeVar

import typer

from sipphones.config import Settings, load_settings

if TYPE_CHECKING:
    from sipphones.storage.store import SqlRepository

# The store, rich and SQLAlchemy are imported by the commands that use them, not by every start
# of the CLI: ``serve`` must answer /healthz within a second of its launch.

T = TypeVar("T")

DatabaseOption = typer.Option(None, "--database-url", envvar="SIPPHONES_DATABASE_URL",
                              help="sqlite:///path.db or postgresql://host/db (default: a SQLite file in the data directory).")
DataDirOption = typer.Option(None, "--data-dir", envvar="SIPPHONES_DATA_DIR",
                             help="Where the SQLite file and the secret key live.")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


class CliError(Exception):
    """A problem to report to the operator as one plain sentence (exit code 1)."""


def settings_from(database_url: str | None, data_dir: str | None) -> Settings:
    try:
        return load_settings(database_url=database_url, data_dir=data_dir)
    except ValueError as e:  # a bad SIPPHONES_* value: one sentence, not a traceback
        fail(str(e))
        raise


@asynccontextmanager
async def open_store(settings: Settings, *, create: bool = False) -> AsyncIterator["SqlRepository"]:
    """The store of ``settings``, migrated. A SQLite file that does not exist yet is created only
    with ``create`` (the commands that start a store: ``accounts create``, ``serve``); every other
    command names the missing file instead, so a mistyped path or data directory is not met with
    an empty new store."""
    from sipphones.storage.crypto import PasswordCipher
    from sipphones.storage.database import DatabaseUrlError, migrate, sqlite_file
    from sipphones.storage.keys import Keys, load_master_key
    from sipphones.storage.store import SqlRepository

    url = settings.resolved_database_url()
    if not create:
        try:
            path = sqlite_file(url)
        except DatabaseUrlError as e:
            raise CliError(str(e)) from None
        if path is not None and not os.path.exists(path):
            raise CliError(f"no database at {path}: nothing has been stored there yet (`sipphones accounts "
                           "create` or `sipphones serve` creates it); check --database-url or --data-dir")
    try:
        await asyncio.to_thread(migrate, url)
    except DatabaseUrlError as e:
        raise CliError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - connection refused, permissions...
        raise CliError(f"cannot open the database {_safe_url(url)}: {_reason(e)}") from None
    keys = Keys.derive(load_master_key(settings.secret_key, settings.data_dir))
    repo = SqlRepository.from_url(url, PasswordCipher(keys.sip_password), settings.sqlite_pragmas(),
                                  settings.postgres_tuning())
    try:
        yield repo
    finally:
        await repo.close()


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; operator errors become one sentence on stderr and exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from sipphones.accounts.service import NotFoundError
    from sipphones.errors import ValidationFailed, ZoomError

    try:
        return asyncio.run(coro_fn())
    except ValidationFailed as e:
        fail("invalid " + "; ".join(f"{x.field}: {x.message}" for x in e.errors))
    except (CliError, NotFoundError, ValueError) as e:
        fail(str(e))
    except ZoomError as e:
        fail(e.message)
    except SQLAlchemyError as e:  # e.g. the database went away or is locked: still one sentence
        fail(f"database error: {_reason(e)}")
    raise AssertionError("unreachable")


def fail(message: str, code: int = 1) -> None:
    """One plain line on stderr (never wrapped or styled: scripts read it) and exit ``code``."""
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - the URL itself is what is wrong
        return "(unreadable URL)"


def _reason(error: Exception) -> str:
    """The driver's own words for a connection failure, on one line, without SQLAlchemy's
    wrapping (``(psycopg.OperationalError)``, background links)."""
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split())
    return text or cause.__class__.__name__


def emit(data: Any, as_json: bool, *, columns: list[str] | None = None, title: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    if isinstance(data, dict):
        # One record: "key: value" lines, every value whole (a client secret shown once must
        # never be cut to fit a terminal).
        width = max(len(k) for k in data)
        for key, value in data.items():
            sys.stdout.write(f"{key.ljust(width)}  {_cell(value)}\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = data
    if not rows:
        console.print("(none)")
        return
    cols = columns or list(rows[0].keys())
    table = Table(title=title)
    for c in cols:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in cols])
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)
