"""The mypyc build of the SIP core (the package's metadata is in pyproject.toml).

    SIPPHONES_MYPYC=sip  python setup.py build_ext --inplace   # compile src/sipphones/sip/*
    SIPPHONES_MYPYC=all  python setup.py build_ext --inplace   # ... and sipio's client/transport/timers
    SIPPHONES_MYPYC=sip  pip install --no-build-isolation -e .  # the same through pip (mypy in the venv)
    (unset / 0)                                                 # pure Python
    python setup.py -q compiled_fresh                           # exit 0 when the build is complete and fresh

``scripts/bootstrap.sh`` builds ``all`` (and requires it to succeed: SIPPHONES_MYPYC_REQUIRED=1).
Elsewhere nothing is compiled without the variable, and the package stays the plain Python one
when mypy (mypyc) is not installed or the C build fails (no compiler, no Python headers): the
modules are all-or-nothing, never half compiled. ``SIPPHONES_MYPYC_OPT`` sets mypyc's opt level
(default 3). Remove compiled modules with ``find src -name '*.so' -delete``;
``sipphones._mypyc.ensure_fresh`` refuses to import a compiled module older than its source.
"""

from __future__ import annotations

import os
import sys

from setuptools import Command, setup
from setuptools.command.build_ext import build_ext

SIP = [
    "src/sipphones/sip/errors.py",
    "src/sipphones/sip/address.py",
    "src/sipphones/sip/message.py",
    "src/sipphones/sip/syntax.py",
    "src/sipphones/sip/uri.py",
    "src/sipphones/sip/headers.py",
    "src/sipphones/sip/parser.py",
    "src/sipphones/sip/digest.py",
    "src/sipphones/sip/config.py",
    "src/sipphones/sip/transaction.py",
    "src/sipphones/sip/events.py",
    "src/sipphones/sip/attempt.py",
    "src/sipphones/sip/engine.py",
    "src/sipphones/sip/registration.py",
    "src/sipphones/sip/registration_check.py",
]
SIPIO = [
    "src/sipphones/sipio/timers.py",
    "src/sipphones/sipio/transport.py",
    "src/sipphones/sipio/udp.py",
    "src/sipphones/sipio/stream.py",
    "src/sipphones/sipio/manager.py",
    "src/sipphones/sipio/stack.py",
    "src/sipphones/sipio/runner.py",
    "src/sipphones/sipio/agent.py",
]


REQUIRED = os.environ.get("SIPPHONES_MYPYC_REQUIRED") == "1"


def _which() -> str:
    return os.environ.get("SIPPHONES_MYPYC", "").strip().lower()


def _paths(which: str) -> list[str]:
    return SIP + (SIPIO if which == "all" else [])


def _warn(text: str) -> None:
    if REQUIRED:
        raise SystemExit(f"sipphones: {text}")
    print(f"sipphones: {text}; using the pure-Python modules", file=sys.stderr)


def _ext_modules() -> list:
    which = _which()
    if which in ("", "0", "no", "off"):
        return []
    paths = _paths(which)
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


class CompiledFresh(Command):
    """``setup.py compiled_fresh``: exit 1 unless every module of ``SIPPHONES_MYPYC`` (default
    all) has an extension module newer than its source and than this file."""

    description = "check that the mypyc build is complete and not older than its sources"
    user_options: list = []

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        import glob

        newest_input = os.stat(__file__).st_mtime
        for path in _paths(_which() or "all"):
            built = glob.glob(path[:-3] + ".*.so")
            if not built or os.stat(built[0]).st_mtime < max(newest_input, os.stat(path).st_mtime):
                raise SystemExit(f"{path}: not compiled, or compiled before its last change")


class OptionalBuildExt(build_ext):
    """Builds every compiled module or none: a failed C build leaves the pure-Python package."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # CompileError, LinkError, missing Python.h or compiler
            if REQUIRED:
                raise
            _warn(f"the C build failed ({e})")
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            self.extensions = []
            self.distribution.ext_modules = []


compiling = any(arg.startswith(("build", "bdist", "install", "develop", "editable", "dist_info", "egg_info"))
                for arg in sys.argv[1:])
setup(ext_modules=_ext_modules() if compiling else [],
      cmdclass={"build_ext": OptionalBuildExt, "compiled_fresh": CompiledFresh})
