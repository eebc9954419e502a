"""A guard against stale compiled modules of the SIP packages (standard library only).

``scripts/bootstrap.sh`` compiles ``sipphones.sip`` and the hot modules of ``sipphones.sipio``
with mypyc into extension modules beside their sources (see ``setup.py``). An extension module
wins over its ``.py`` even when the ``.py`` was edited (or changed by ``git pull``) after it was
compiled, and the old code would run without a word: :func:`ensure_fresh` (called by both
packages' ``__init__``) refuses to import such a package and says how to rebuild. This module is
never compiled itself (it is not in setup.py's lists).
"""

from __future__ import annotations

import os

__all__ = ["REBUILD", "stale_modules", "ensure_fresh", "compiled_modules"]

REBUILD = ("rebuild it with `bash scripts/bootstrap.sh` (or run pure Python: "
           "`find src -name '*.so' -delete`)")


def compiled_modules(package_dir: str) -> dict[str, tuple[str, str]]:
    """``{module: (source path, extension path)}`` for the modules of ``package_dir`` that have
    a compiled extension beside their source."""
    sources: dict[str, str] = {}
    extensions: dict[str, str] = {}
    with os.scandir(package_dir) as entries:
        for entry in entries:
            name = entry.name
            if name.endswith(".py"):
                sources[name[:-3]] = entry.path
            elif name.endswith(".so"):
                extensions[name.split(".", 1)[0]] = entry.path
    return {m: (sources[m], so) for m, so in extensions.items() if m in sources}


def stale_modules(package_dir: str) -> list[str]:
    """Modules whose source changed after their extension was built."""
    return sorted(m for m, (py, so) in compiled_modules(package_dir).items()
                  if os.stat(py).st_mtime > os.stat(so).st_mtime)


def ensure_fresh(package: str, package_dir: str) -> None:
    """Raise ImportError when a compiled module of ``package`` is older than its source."""
    stale = stale_modules(package_dir)
    if stale:
        names = ", ".join(f"{package}.{m}" for m in stale)
        raise ImportError(f"the compiled {names} is older than its source; {REBUILD}")
