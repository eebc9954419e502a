"""Where a request's time goes: py-spy samples of the server tree under wrk load, summarised.

``record`` runs ``py-spy record --subprocesses --nonblocking --format raw`` on the server's root
process while wrk drives one workload; ``summarize`` reads the collapsed stacks and attributes
every sample twice:

* **phase** of the request path: the outermost frame of the request path that matches one of
  ``PHASES`` (authentication, rate limiter, body parsing, validation, service, response...), or,
  outside the app, the framework (Starlette), the HTTP server (uvicorn), the event loop itself
  (uvloop/httptools run in C: the innermost Python frame is asyncio's runner), or the
  aiosqlite worker thread. For each phase, the share of its samples that are inside the database
  layer (SQLAlchemy, aiosqlite, psycopg, the repository) is given too.
* **library** of the innermost Python frame (self time).

Samples are taken with ``--gil``: only the thread holding the GIL, i.e. the interpreter time that
limits one worker process. Shares are shares of that time.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

from bench.procs import REPO

# (label, substrings of a frame "function (path:line)"); the outermost frame matching a phase decides.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("auth: bearer token + account/app lookup", ("authenticate (sipphones/api/endpoint.py",)),
    ("rate limiter", ("RateLimiter.hit (",)),
    ("scopes/permissions", ("authorize (sipphones/api/endpoint.py",)),
    ("request body read + JSON parse", ("json_body (sipphones/api/endpoint.py",)),
    ("query parameters", ("int_param (sipphones/api/endpoint.py",)),
    ("validation (fields -> changes)", ("validate_phone_fields (", "legacy_fields (", "current_fields (")),
    ("service + repository (domain rules, DB)", ("PhoneService.",)),
    ("response: phone -> dict", ("legacy_phone (", "current_phone (")),
    ("response: JSON render + headers", ("json_response (", "empty_response (", "error_response (",
                                         "JSON.render (")),
]
# The wrapper and the handlers enclose every phase: they count only for samples in no phase above.
GLUE = ("endpoint wrapper + handler glue", ("endpoint (sipphones/api/endpoint.py", "(sipphones/api/"))
DB_MARKERS = ("(sqlalchemy/", "(aiosqlite/", "(psycopg/", "(psycopg_pool/", "SqlRepository.", "(sipphones/storage/")
LIBRARIES = [
    ("sipphones", "(sipphones/"), ("SQLAlchemy", "(sqlalchemy/"), ("aiosqlite", "(aiosqlite/"),
    ("psycopg", "(psycopg"), ("Starlette", "(starlette/"), ("uvicorn", "(uvicorn/"), ("limits", "(limits/"),
    ("PyJWT", "(jwt/"), ("cryptography", "(cryptography/"), ("pydantic", "(pydantic"), ("anyio", "(anyio/"),
    ("asyncio", "(asyncio/"), ("threading/queue", "(threading.py"), ("threading/queue", "(queue.py"),
    ("concurrent", "(concurrent/"), ("json", "(json/"), ("typing", "(typing.py"), ("enum", "(enum.py"),
    ("dataclasses", "(dataclasses.py"), ("base64/hmac/hashlib", "(base64.py"), ("base64/hmac/hashlib", "(hmac.py"),
    ("secrets/random", "(secrets.py"), ("secrets/random", "(random.py"), ("urllib", "(urllib/"),
]


_PROCESS_PREFIX = re.compile(r'^(?:process \d+:".*?"(?:;|$))+')


def py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        raise RuntimeError(f"py-spy is not installed in the venv ({exe}): .venv/bin/pip install py-spy")
    return str(exe)


def record(root_pid: int, seconds: float, out: Path, rate: int = 250, extra: tuple[str, ...] = ("--gil",)) -> subprocess.Popen:
    """Start sampling the tree under ``root_pid`` for ``seconds``; the caller waits for the process.

    ``--gil`` (default) keeps only samples of the thread holding the GIL: the Python work that
    bounds a worker's throughput. SQLite's own C work (aiosqlite's thread, GIL released) and
    threads waiting on a queue are then left out; pass ``extra=()`` to sample every thread."""
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(root_pid), "--subprocesses", "--rate", str(rate),
         "--duration", str(int(seconds)), "--format", "raw", "-o", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO))


def _phase(frames: list[str]) -> str:
    if not frames:
        return "event loop (uvloop + httptools, in C)"
    for frame in frames:  # outermost first
        for label, needles in PHASES:
            if any(n in frame for n in needles):
                return label
    inner = frames[-1] if frames else ""
    if any(n in f for f in frames for n in GLUE[1]):
        return GLUE[0]
    if any("(aiosqlite/" in f for f in frames):
        return "aiosqlite worker thread (SQLite in C + glue)"
    if any("(starlette/" in f for f in frames):
        return "Starlette (routing, Request, Response)"
    if "(uvicorn/" in inner or any("RequestResponseCycle" in f or "HttpToolsProtocol" in f for f in frames):
        return "uvicorn HTTP protocol"
    if "(asyncio/runners.py" in inner or "(uvicorn/_compat.py" in inner or "(uvicorn/server.py" in inner:
        return "event loop (uvloop + httptools, in C)"
    if any("(psycopg" in f for f in frames):
        return "psycopg (outside a request phase)"
    if any("(sqlalchemy/" in f for f in frames):
        return "SQLAlchemy (outside a request phase)"
    return "other"


def _library(frames: list[str]) -> str:
    if not frames:
        return "C code with no Python frame (uvloop, httptools)"
    inner = frames[-1] if frames else ""
    for label, needle in LIBRARIES:
        if needle in inner:
            return label
    return "other (stdlib, C entry points)"


def summarize(raw: Path) -> dict:
    """Shares of samples by phase (with the database part of each) and by innermost library."""
    phases: collections.Counter[str] = collections.Counter()
    phases_db: collections.Counter[str] = collections.Counter()
    libs: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        stack = _PROCESS_PREFIX.sub("", stack)  # command lines may contain ';'
        frames = [f for f in stack.split(";") if f and not f.startswith("thread ")]
        total += n
        phase = _phase(frames)
        phases[phase] += n
        if any(m in f for f in frames for m in DB_MARKERS):
            phases_db[phase] += n
        libs[_library(frames)] += n
        functions[frames[-1] if frames else "(no Python frame: uvloop/httptools C code)"] += n
    if not total:
        return {"samples": 0}

    def share(c: int) -> float:
        return round(100.0 * c / total, 1)

    return {
        "samples": total,
        "phases": [{"phase": p, "pct": share(c), "db_pct": share(phases_db[p])} for p, c in phases.most_common()],
        "libraries_self": [{"library": lib, "pct": share(c)} for lib, c in libs.most_common()],
        "top_self_functions": [{"function": f, "pct": share(c)} for f, c in functions.most_common(25)],
    }
