"""sipphones uses only the public API of the libraries it runs on (issue 11, item 4): the next
uvicorn or Starlette release must not break it silently.

- No attribute with a leading underscore is read or written on an object that is not ours: every
  ``obj._name`` in ``src/`` must name something ``src/`` itself defines (a ``def``, a class, an
  assignment, a ``__slots__`` entry), or be one of the names Python and its libraries document
  with a leading underscore to stay clear of field names (namedtuple's ``_replace``/``_fields``,
  SQLAlchemy's ``Row._mapping``, ``os._exit``).
- uvicorn's internal modules are imported in one place, ``sipphones.api.http_protocol``, which
  checks the installed uvicorn when it is imported (``check_uvicorn``), and no class of ours
  inherits from one of uvicorn's or Starlette's protocol or request classes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "sipphones"

# Documented names with a leading underscore (not private): namedtuple's API, SQLAlchemy's
# Row._mapping (documented as public, underscored to avoid clashing with column names), os._exit.
DOCUMENTED = {"_replace", "_fields", "_asdict", "_make", "_field_defaults", "_mapping", "_exit"}


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(SRC.rglob("*.py"))]


def _ours(trees) -> set[str]:
    names: set[str] = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets):
                for const in ast.walk(node.value):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        names.add(const.value)
    return names


def private_uses(trees) -> list[str]:
    ours = _ours(trees)
    found = []
    for path, tree in trees:
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                    and not node.attr.startswith("__") and node.attr not in DOCUMENTED):
                if node.attr not in ours or node.attr in _THIRD_PARTY_PRIVATES:
                    found.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: .{node.attr}")
    return found


# Private attributes of Starlette's Request that an earlier version of the dispatcher used in a
# subclass (assigning them made them "ours" to the name scan above, so they are named here).
_THIRD_PARTY_PRIVATES = {"_body", "_stream_consumed", "_is_disconnected", "_receive"}


def test_no_private_attribute_of_a_library_is_used():
    assert private_uses(_trees()) == []


def test_the_scan_finds_a_private_attribute_of_a_library():
    tree = ast.parse("async def body(self, request):\n"
                     "    request._stream_consumed = True\n"
                     "    return request._receive\n")
    assert len(private_uses([(SRC / "example.py", tree)])) == 2


def test_uvicorns_internals_are_imported_in_one_module_and_checked():
    importers = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("uvicorn.protocols"):
                importers.append(path.name)
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    text = ast.unparse(base)
                    assert not any(k in text for k in ("HttpToolsProtocol", "H11Protocol", "Request")), \
                        f"{path.name}: class {node.name} inherits from {text}"
    assert set(importers) <= {"http_protocol.py"}

    from sipphones.api.http_protocol import check_uvicorn

    check_uvicorn()       # the installed uvicorn has what the protocol reads


def test_an_incompatible_uvicorn_is_refused_with_a_sentence(monkeypatch):
    from uvicorn.server import ServerState

    from sipphones.api import http_protocol

    class Bare:
        def __init__(self):
            self.connections = set()

    monkeypatch.setattr("uvicorn.server.ServerState", Bare)
    with pytest.raises(http_protocol.IncompatibleUvicorn, match=r"uvicorn \S+ is not compatible.*default_headers"):
        http_protocol.check_uvicorn()
    monkeypatch.setattr("uvicorn.server.ServerState", ServerState)


def test_every_dependency_is_bounded_to_the_major_version_tested():
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement

    project = tomllib.loads((SRC.parent.parent / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    for text in requirements:
        req = Requirement(text)
        uppers = [s for s in req.specifier if s.operator == "<"]
        assert uppers and any(s.operator == ">=" for s in req.specifier), f"{text}: no upper and lower bound"
        installed = version(req.name)
        assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} is outside {text}"
