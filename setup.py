"""Optional mypyc build of the sans-IO SIP core (experiment; metadata stays in pyproject.toml).

    SIPPHONES_MYPYC=sip  python setup.py build_ext --inplace   # compile src/sipphones/sip/*
    SIPPHONES_MYPYC=all  python setup.py build_ext --inplace   # ... and sipio's client/transport/timers
    SIPPHONES_MYPYC=sip  pip install --no-build-isolation -e .  # the same through pip (mypy in the venv)
    (unset / 0)                                                 # pure Python, as before

Nothing is compiled without the variable, and the package stays the plain Python one when
mypy (mypyc) is not installed or the C build fails (no compiler, no Python headers): the
modules are all-or-nothing, never half compiled. ``SIPPHONES_MYPYC_OPT`` sets mypyc's opt level
(default 3). Remove compiled modules with ``find src -name '*.so' -delete``.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

SIP = [
    "src/sipphones/sip/errors.py",
    "src/sipphones/sip/message.py",
    "src/sipphones/sip/headers.py",
    "src/sipphones/sip/parser.py",
    "src/sipphones/sip/digest.py",
    "src/sipphones/sip/config.py",
    "src/sipphones/sip/transaction.py",
    "src/sipphones/sip/registration.py",
]
SIPIO = [
    "src/sipphones/sipio/timers.py",
    "src/sipphones/sipio/transport.py",
    "src/sipphones/sipio/client.py",
]


def _warn(text: str) -> None:
    print(f"sipphones: {text}; using the pure-Python modules", file=sys.stderr)


def _ext_modules() -> list:
    which = os.environ.get("SIPPHONES_MYPYC", "").strip().lower()
    if which in ("", "0", "no", "off"):
        return []
    paths = SIP + (SIPIO if which == "all" else [])
    only = os.environ.get("SIPPHONES_MYPYC_ONLY")
    if only:  # a comma-separated subset of the file names above, for bisecting
        paths = [p for p in paths if any(p.endswith(x) for x in only.split(","))]
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypy (mypyc) is not installed")
        return []
    try:
        return mypycify(paths, opt_level=os.environ.get("SIPPHONES_MYPYC_OPT", "3"),
                        group_name="sipphones", strip_asserts=False)
    except BaseException as e:  # type errors make mypyc exit
        _warn(f"mypyc failed ({e!r})")
        return []


class OptionalBuildExt(build_ext):
    """Builds every compiled module or none: a failed C build leaves the pure-Python package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # CompileError, LinkError, missing Python.h or compiler
            _warn(f"the C build failed ({e})")
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            self.extensions = []
            self.distribution.ext_modules = []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
