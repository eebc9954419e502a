"""Structural rules of the code base that a reviewer would otherwise have to remember."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sipphones"
SANS_IO_FORBIDDEN = {"asyncio", "socket", "time", "random", "secrets", "ssl", "selectors", "threading"}
DOMAIN_PACKAGES = ("phones", "accounts", "auth", "ratelimit")


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
    return mods


@pytest.mark.parametrize("path", sorted((SRC / "sip").glob("*.py")), ids=lambda p: p.name)
def test_sans_io_core_does_no_io(path):
    bad = _imported_roots(path) & SANS_IO_FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}: the SIP core must stay sans-IO"


def test_sans_io_core_exists():
    assert len(list((SRC / "sip").glob("*.py"))) >= 5


@pytest.mark.parametrize("package", DOMAIN_PACKAGES)
def test_domain_knows_no_http(package):
    for path in (SRC / package).glob("*.py"):
        mods = _imported_modules(path)
        http = {m for m in mods if m.split(".")[0] in ("starlette", "uvicorn", "httpx") or m.startswith("sipphones.api")}
        assert not http, f"{path} imports HTTP modules {sorted(http)}"


# The domain (and the services built on it) reach the store only through the repository interface,
# ``sipphones.repository``; storage implements it. The one other storage module they may use is
# ``storage.crypto`` (salted hashes of app secrets: a primitive, no store behind it).
STORE_USERS = DOMAIN_PACKAGES + ("monitor", "check")
STORAGE_ALLOWED = {"sipphones.storage.crypto"}


@pytest.mark.parametrize("package", STORE_USERS)
def test_domain_reaches_storage_only_through_the_repository_interface(package):
    for path in (SRC / package).rglob("*.py"):
        mods = _imported_modules(path)
        storage = {m for m in mods if (m == "sipphones.storage" or m.startswith("sipphones.storage."))
                   and m not in STORAGE_ALLOWED}
        assert not storage, f"{path} imports {sorted(storage)}: use sipphones.repository"


def test_the_repository_interface_knows_no_storage():
    mods = _imported_modules(SRC / "repository.py")
    assert not {m for m in mods if m.startswith("sipphones.storage") or m.split(".")[0] in ("sqlalchemy", "sqlite3",
                                                                                              "psycopg")}


def test_the_raw_path_does_not_use_sqlalchemy_and_the_alchemy_path_not_the_drivers():
    # storage.raw: the stdlib sqlite3 and psycopg only (``runner_for`` parses the URL with
    # SQLAlchemy's make_url, and ``statements`` read the column names off the SQLAlchemy tables).
    for path in (SRC / "storage" / "raw").glob("*.py"):
        mods = _imported_modules(path)
        orm = {m for m in mods if m.split(".")[0] == "sqlalchemy" and m != "sqlalchemy.engine"}
        assert not orm, f"{path} imports {sorted(orm)}"
    for path in (SRC / "storage" / "alchemy").glob("*.py"):
        mods = _imported_modules(path)
        drivers = {m for m in mods if m.split(".")[0] in ("sqlite3", "psycopg", "psycopg_pool")}
        assert not drivers, f"{path} imports {sorted(drivers)}"
