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
blocking their event loops (``storage.raw.sqlite.SqliteRunner`` retries its ``BEGIN IMMEDIATE``), so
only the writes of those milliseconds wait, reads do not. The mark is high because each RESTART is
such a pause: with 4,000 pages, creates at 2,000/s met one every few hundred milliseconds, some
of 100-270 ms on a busy machine, and their p99 was worse than with SQLite's own checkpoints; with
16,384 pages they came every ~2 s at 7-20 ms, and the p99 of creates and updates at a steady
2,000-2,500/s fell from 10-20 ms (checkpoints inside COMMITs) to 4-5 ms.

The process exits when it is told to (SIGTERM, SIGINT: a Ctrl-C reaches the whole process group),
when its parent exits (the kernel's parent-death signal where Linux offers it, and a check of the
parent's PID at every tick elsewhere), and runs one last PASSIVE checkpoint before it goes.

``CheckpointKeeper`` keeps it running: ``serve`` calls its ``reap`` when a child of its process
has ended (SIGCHLD). A process that ended any other way than told to (killed by a signal,
crashed) is reaped, reported as a warning and replaced; the replacement waits out a back-off
(``RESTART_DELAYS_S``) before its first round, so one that keeps dying costs a start every minute
at most. The replacement is a fresh interpreter (``python -m sipphones.storage.checkpoints``), not
a fork: by then the server holds sockets, connections and its event loop's signal wake-up
descriptor, none of which a checkpoint process may share. One that stopped because it was told to
(status 0: a SIGTERM of the operator, the Ctrl-C of a terminal) is reaped and not replaced.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import NamedTuple

INTERVAL_S = 0.25        # seconds between checkpoints
RESTART_FRAMES = 16_384  # WAL pages (64 MiB of 4 KiB pages) above which the WAL is rewound
FALLBACK_PAGES = 50_000  # the workers' wal_autocheckpoint while this process runs (~200 MB)
PROCESS_NAME = b"sipphones-wal"  # as ps and /proc/PID/comm show it (at most 15 bytes)
HANDLED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
# Seconds a replacement waits before its first round, by how many replaced processes in a row
# died within STEADY_S of their first round; a process that ran longer starts the count again.
RESTART_DELAYS_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
STEADY_S = 60.0

log = logging.getLogger("sipphones.storage")


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
        unblock: set | None = None, delay: float = 0.0) -> None:
    """The checkpoint loop (the body of the forked process); returns when told to stop or when
    the parent is gone. ``unblock``: the signal mask to restore once the handlers are in place;
    ``delay``: seconds to wait before the first round (a replacement's back-off)."""
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
    try:
        end = time.monotonic() + delay
        while os.getppid() == parent_pid and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, max(interval, 0.01)))
    except _Stop:
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
    """The checkpoint process of one SQLite database file: forked (``start``) or, to replace one,
    a fresh interpreter (``spawn``)."""

    pid: int
    path: str
    popen: subprocess.Popen | None = field(default=None, repr=False)   # a spawned one
    returncode: int | None = None   # once reaped (None also when something else reaped it)
    reaped: bool = False

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

    @classmethod
    def spawn(cls, path: str, interval: float = INTERVAL_S, restart_frames: int = RESTART_FRAMES,
              delay: float = 0.0) -> "CheckpointProcess":
        """Start the process as a fresh interpreter that inherits no descriptor but stdin (none),
        stdout and stderr; safe to call from a running server, threads and all."""
        popen = subprocess.Popen(
            [sys.executable, "-m", __name__, path, str(os.getpid()), repr(interval), str(restart_frames), repr(delay)],
            stdin=subprocess.DEVNULL, close_fds=True)
        return cls(popen.pid, path, popen)

    def poll(self) -> int | None:
        """Its exit code (negative: the signal that ended it) once it has ended, reaping it; None
        while it runs, and when something else reaped it (its status is then lost)."""
        if self.reaped:
            return self.returncode
        if self.popen is not None:
            self.returncode = self.popen.poll()
            self.reaped = self.returncode is not None
            return self.returncode
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.reaped = True
            return None
        if pid:
            self.reaped, self.returncode = True, os.waitstatus_to_exitcode(status)
        return self.returncode

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` (it runs a last checkpoint), then SIGKILL; reaps it.
        Its exit status, None when something else had reaped it."""
        if self.poll() is not None or self.reaped:
            return self.returncode
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while True:
            code = self.poll()
            if self.reaped:
                return code
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)   # not reaped: the PID is still its own
                if self.popen is not None:
                    self.returncode = self.popen.wait()
                else:
                    try:
                        _, status = os.waitpid(self.pid, 0)
                        self.returncode = os.waitstatus_to_exitcode(status)
                    except ChildProcessError:
                        pass
                self.reaped = True
                return self.returncode
            time.sleep(0.01)


def describe_exit(code: int) -> str:
    """``killed by SIGKILL`` or ``exited with status 1``, from an exit code as ``poll`` gives it."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class CheckpointKeeper:
    """Keeps the checkpoint process of one database file running (see the module's text)."""

    def __init__(self, path: str, interval: float = INTERVAL_S, restart_frames: int = RESTART_FRAMES,
                 clock=time.monotonic):
        self.path, self.interval, self.restart_frames, self.clock = path, interval, restart_frames, clock
        self.process = CheckpointProcess.start(path, interval, restart_frames)
        self.first_round_at = clock() + interval
        self.quick_deaths = 0      # replaced processes in a row that died within STEADY_S
        self.stopping = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def next_delay(self) -> float:
        """The back-off of the next replacement, counting the process that just ended."""
        if self.clock() - self.first_round_at >= STEADY_S:
            self.quick_deaths = 0
        delay = RESTART_DELAYS_S[min(self.quick_deaths, len(RESTART_DELAYS_S) - 1)]
        self.quick_deaths += 1
        return delay

    def reap(self) -> int | None:
        """Called when a child of this process has ended: when it was the checkpoint process, reap
        it and, unless it stopped when told to (or the keeper is stopping), report it and start a
        replacement. The ended process's exit code; None when it still runs, and while the keeper
        stops it (``stop`` reaps it then)."""
        if self.stopping:
            return None
        process = self.process
        code = process.poll()
        if code is None:
            return None
        if code == 0:
            log.info("the WAL checkpoint process [%d] stopped when told to; not restarted", process.pid)
            return code
        delay = self.next_delay()
        try:
            self.process = CheckpointProcess.spawn(self.path, self.interval, self.restart_frames, delay)
        except OSError as e:
            log.warning("the WAL checkpoint process [%d] %s; it could not be restarted (%s): the workers "
                        "checkpoint by themselves", process.pid, describe_exit(code), e)
            return code
        self.first_round_at = self.clock() + delay + self.interval
        log.warning("the WAL checkpoint process [%d] %s; restarted as [%d]%s", process.pid, describe_exit(code),
                    self.process.pid, f" (first checkpoint in {delay:g} s)" if delay else "")
        return code

    def stop(self, timeout: float = 5.0) -> int | None:
        self.stopping = True
        return self.process.stop(timeout)


def main(argv: list[str]) -> int:
    """``python -m sipphones.storage.checkpoints PATH PARENT_PID INTERVAL RESTART_FRAMES DELAY``:
    a replacement started by ``CheckpointKeeper`` (``CheckpointProcess.spawn``)."""
    path, parent, interval, restart_frames, delay = argv
    try:
        run(path, int(parent), float(interval), int(restart_frames), delay=float(delay))
    except _Stop:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
