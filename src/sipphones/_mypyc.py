"""The compiled SIP core (mypyc, see setup.py): its class decorator, and a guard against stale
compiled modules.

``scripts/bootstrap.sh`` compiles the sans-IO core (``sipphones.sip``) and the hot modules of
``sipphones.sipio`` with mypyc into extension modules beside their sources; Python then imports
``parser.cpython-311-*.so`` instead of ``parser.py``. The sources stay the truth: without a
compiler, with ``SIPPHONES_MYPYC=0`` or from a plain ``pip install`` the same package runs as
pure Python.

One trap comes with it: an extension module wins over its ``.py`` even when the ``.py`` was
edited (or changed by ``git pull``) after it was compiled, and the old code would run without
a word. :func:`ensure_fresh` (called by both packages' ``__init__``) refuses to import such a
package and says how to rebuild; it lives in ``sipphones.sip.freshness`` (standard library only,
so that the SIP core imports nothing outside itself) and is re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:
    try:
        from mypy_extensions import mypyc_attr
    except ImportError:  # pure-Python install: the attributes mean nothing
        def mypyc_attr(*args: Any, **kwargs: Any) -> Any:
            return lambda cls: cls

from sipphones.sip.freshness import REBUILD, compiled_modules, ensure_fresh, stale_modules

__all__ = ["mypyc_attr", "stale_modules", "ensure_fresh", "compiled_modules", "REBUILD"]
