"""The SIP core compiled with mypyc (setup.py, scripts/bootstrap.sh) and its pure-Python twin.

The test command builds the compiled modules, so every other test exercises them; these tests
check that they are really in use, that a compiled module older than its source refuses to
load (it would run old code without a word), and that the pure-Python package, what a plain
``pip install`` gives, still passes the sans-IO core's tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sipphones.sip.parser
import sipphones.sipio.runner

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
COMPILED = [sipphones.sip.parser, sipphones.sipio.runner]
is_compiled = all(m.__file__.endswith(".so") for m in COMPILED)
needs_compiled = pytest.mark.skipif(not is_compiled, reason="the SIP core is not compiled (SIPPHONES_MYPYC=0, or "
                                                            "scripts/bootstrap.sh did not run)")


def test_the_test_command_runs_the_compiled_core():
    if os.environ.get("SIPPHONES_FAIL_ON_SKIP") != "1" or os.environ.get("SIPPHONES_MYPYC") == "0":
        pytest.skip("only the test command (scripts/test.sh) requires the compiled build")
    assert is_compiled, [m.__file__ for m in COMPILED]


def _copy_package(dest: Path, *, with_extensions: bool) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", *([] if with_extensions else ["*.so"]))
    shutil.copytree(SRC / "sipphones", dest / "sipphones", ignore=ignore)
    if with_extensions:
        for shared in SRC.glob("sipphones__mypyc*.so"):
            shutil.copy2(shared, dest / shared.name)
    return dest


def _python(path: Path, code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(path))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


@needs_compiled
def test_a_compiled_module_older_than_its_source_refuses_to_load(tmp_path):
    tree = _copy_package(tmp_path, with_extensions=True)
    probe = "import sipphones.sip.parser as p, sipphones.sipio.runner as c; print(p.__file__, c.__file__)"
    ok = _python(tree, probe)
    assert ok.returncode == 0 and ok.stdout.count(".so") == 2, ok.stderr
    source = tree / "sipphones" / "sip" / "parser.py"
    later = time.time() + 5
    os.utime(source, (later, later))                 # edited (or pulled) after the build
    stale = _python(tree, probe)
    assert stale.returncode == 1
    assert ("ImportError: the compiled sipphones.sip.parser is older than its source; rebuild it with "
            "`bash scripts/bootstrap.sh`") in stale.stderr


def test_the_pure_python_core_passes_the_core_tests(tmp_path):
    tree = _copy_package(tmp_path, with_extensions=False)
    probe = _python(tree, "import sipphones.sip.registration as r, sipphones.sipio.runner as c; "
                          "print(r.__file__, c.__file__)")
    assert probe.returncode == 0 and ".so" not in probe.stdout and probe.stdout.count(".py") == 2, probe.stderr
    env = dict(os.environ, PYTHONPATH=str(tree))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "tests/sip", "tests/sip_io/test_timers.py", "tests/sip_io/test_gc_policy.py"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
