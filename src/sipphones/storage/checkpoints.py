"""WAL checkpoints of a SQLite store, run by a process of their own instead of inside COMMITs.

Why: SQLite checkpoints a WAL database automatically (``wal_autocheckpoint``, every 1000 pages)
inside the COMMIT of whichever connection crosses the mark. In ``sipphones serve`` that is a
worker's event loop: the checkpoint copies the WAL's pages into the database file and, with
``synchronous=NORMAL``, fsyncs both files, 30-50 ms on the slow disk of the benchmark machine
during which the worker answers nothing. At a steady load these stalls are what the p99 latency
measures.

So ``serve`` forks a small process before it starts uvicorn (``CheckpointProcess.start``) that
runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds: a PASSIVE checkpoint takes no
lock that a reader or a writer waits for, so the workers go on reading and committing while it
copies and fsyncs. The workers get a much higher ``wal_autocheckpoint`` (``FALLBACK_PAGES``),
kept only as a bound on the WAL should this process ever stop.

A PASSIVE checkpoint never rewinds the WAL: SQLite starts writing the WAL from its beginning again
only when a writer begins after a checkpoint caught up completely, which under a constant write
load never happens (a commit always lands while the checkpoint fsyncs), and a WAL that keeps
growing costs disk and makes page lookups longer. When the WAL holds more than ``restart_frames``
pages, the process therefore asks for a RESTART checkpoint, without waiting: if a writer holds the
write lock it simply tries again at the next tick. A RESTART holds the write lock for the pages
written since the PASSIVE one plus the two fsyncs; the workers wait for that lock without
blocking their event loops (``storage.hotpath.SqliteRunner`` retries its ``BEGIN IMMEDIATE``), so
only the writes of those milliseconds wait, reads do not. The mark is high because each RESTART is
such a pause: with 4,000 pages, creates at 2,000/s met one every few hundred milliseconds, some
of 100-270 ms on a busy machine, and their p99 was worse than with SQLite's own checkpoints; with
16,384 pages they came every ~2 s at 7-20 ms, and the p99 of creates and updates at a steady
2,000-2,500/s fell from 10-20 ms (checkpoints inside COMMITs) to 4-5 ms.

The process exits when it is told to (SIGTERM, SIGINT: a Ctrl-C reaches the whole process group),
when its parent exits (the kernel's parent-death signal where Linux offers it, and a check of the
parent's PID at every tick elsewhere), and runs one last PASSIVE checkpoint before it goes.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

INTERVAL_S = 0.25        # seconds between checkpoints
RESTART_FRAMES = 16_384  # WAL pages (64 MiB of 4 KiB pages) above which the WAL is rewound
FALLBACK_PAGES = 50_000  # the workers' wal_autocheckpoint while this process runs (~200 MB)
PROCESS_NAME = b"sipphones-wal"  # as ps and /proc/PID/comm show it (at most 15 bytes)
HANDLED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class CheckpointResult(NamedTuple):
    """What ``PRAGMA wal_checkpoint`` answered: ``busy`` when it could not finish (a reader on an
    older snapshot, a writer holding the lock for a RESTART), the pages in the WAL, the pages now
    copied into the database file (both -1 when the database is not in WAL mode)."""

    busy: bool
    wal_frames: int
    checkpointed: int
    restarted: bool = False


def passive(conn: sqlite3.Connection) -> CheckpointResult:
    """A PASSIVE checkpoint: copies what no reader still needs, waits for no one."""
    busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return CheckpointResult(bool(busy), frames, done)


def checkpoint(conn: sqlite3.Connection, restart_frames: int = RESTART_FRAMES,
               previous: CheckpointResult | None = None) -> CheckpointResult:
    """One round: a PASSIVE checkpoint, then, when the WAL is longer than ``restart_frames`` and
    was copied completely, a RESTART one that does not wait for the write lock. ``previous``: the
    last round's result; a WAL restarted then and not written since is not restarted again (its
    header keeps its old length until a writer rewinds it)."""
    first = passive(conn)
    if first.busy or first.wal_frames < restart_frames or first.checkpointed != first.wal_frames:
        return first
    if previous is not None and previous.restarted and previous.wal_frames == first.wal_frames:
        return first._replace(restarted=True)
    busy, frames_now, done_now = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    if busy:
        return CheckpointResult(True, frames_now, done_now)
    return CheckpointResult(False, frames_now, done_now, restarted=True)


def connect(path: str) -> sqlite3.Connection:
    """A connection that never waits for a lock (``busy_timeout`` 0): a checkpoint that cannot
    go on now is simply tried again at the next tick."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=0")
    return conn


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):  # noqa: ANN001
    raise _Stop


def _linux_prctl(parent_death_signal: int) -> None:
    """Name the process and have the kernel send it ``parent_death_signal`` when its parent dies
    (Linux; elsewhere the loop's parent check alone ends it)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(PROCESS_NAME), 0, 0, 0)   # PR_SET_NAME
        libc.prctl(1, parent_death_signal, 0, 0, 0)              # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(path: str, parent_pid: int, interval: float = INTERVAL_S, restart_frames: int = RESTART_FRAMES,
        unblock: set | None = None) -> None:
    """The checkpoint loop (the body of the forked process); returns when told to stop or when
    the parent is gone. ``unblock``: the signal mask to restore once the handlers are in place."""
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    # uvicorn's supervisor takes SIGHUP as "replace the workers"; a terminal's hang-up, sent to the
    # whole group, must not end checkpoints while the server goes on.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if unblock is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, unblock)
    _linux_prctl(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        return
    conn = connect(path)
    reported: set[str] = set()
    last: CheckpointResult | None = None
    try:
        while os.getppid() == parent_pid:
            time.sleep(interval)
            last = _checkpoint_reporting(conn, restart_frames, reported, last)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a second signal must not cut the last round short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _checkpoint_reporting(conn, None, reported, None)
        conn.close()


def _checkpoint_reporting(conn: sqlite3.Connection, restart_frames: int | None, reported: set[str],
                          previous: CheckpointResult | None) -> CheckpointResult | None:
    """One round (``restart_frames`` None: PASSIVE only); an error is told once on stderr (each
    distinct message) and the loop goes on: the workers' own fallback checkpoints keep the WAL
    bounded meanwhile."""
    try:
        return passive(conn) if restart_frames is None else checkpoint(conn, restart_frames, previous)
    except sqlite3.Error as e:
        message = str(e)
        if message not in reported:
            reported.add(message)
            print(f"sipphones: WAL checkpoint failed: {message} (tried again at every tick)",
                  file=sys.stderr, flush=True)
        return None


@dataclass
class CheckpointProcess:
    """The forked checkpoint process of one SQLite database file."""

    pid: int
    path: str

    @classmethod
    def start(cls, path: str, interval: float = INTERVAL_S, restart_frames: int = RESTART_FRAMES) -> "CheckpointProcess":
        """Fork the process. Call it while this process has no other thread (``serve`` does, before
        uvicorn starts): a forked child gets only the calling thread."""
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals wait (blocked) until the child has its own handlers: a SIGTERM or SIGHUP in
        # between would otherwise end it with the parent's (or the default) disposition.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
        pid = os.fork()
        if pid != 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        else:  # the child: never returns into the caller's code
            code = 0
            try:
                run(path, parent, interval, restart_frames, unblock=mask)
            except _Stop:  # told to stop before its loop began
                pass
            except BaseException as e:  # noqa: BLE001 - report, then leave without running the parent's cleanups
                print(f"sipphones: the WAL checkpoint process stopped: {e!r}", file=sys.stderr, flush=True)
                code = 1
            finally:
                os._exit(code)
        return cls(pid, path)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` (it runs a last checkpoint), then SIGKILL; reaps it.
        Its exit status, None when it had been reaped already."""
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if pid:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                _, status = os.waitpid(self.pid, 0)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
