"""``mypyc_attr`` for the optional mypyc build (see setup.py), without a runtime dependency.

mypyc reads the decorator when it compiles a module; the plain-Python package only needs a no-op,
so ``mypy_extensions`` (installed with mypy) is not required to run sipphones.
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

__all__ = ["mypyc_attr"]
