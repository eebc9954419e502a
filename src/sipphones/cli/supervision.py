"""What ``serve``'s own process notices about its children: it handles SIGCHLD.

- The WAL checkpoint process (``storage.checkpoints.CheckpointKeeper``): when it dies it is
  reaped (no zombie), reported as a warning and restarted with a back-off. With one worker its
  parent is the serving process itself, with several the supervisor: either way this process.
- With several workers, a worker that dies (killed by a signal other than uvicorn's own SIGTERM
  and SIGINT, or exiting with an error) is reported as a warning: uvicorn's supervisor replaces it
  but says so only at the info level. Workers are ``multiprocessing`` children of the
  supervisor: an ended child is looked at without reaping it (``waitid`` with ``WNOWAIT``), then
  ``multiprocessing.active_children()`` (public: it joins the children that have ended, keeping
  multiprocessing's and so uvicorn's bookkeeping right) reaps it when it was a worker; a child
  that is not multiprocessing's is left to its owner.

No thread: the handler runs on the main thread between two of uvicorn's steps (the supervisor's
loop, or the one-process server's event loop), and catches everything (an exception raised by a
signal handler would surface in whatever uvicorn was doing). This process must therefore be the
only user of SIGCHLD, which ``serve`` is (it starts no other subprocess).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from sipphones.storage.checkpoints import CheckpointKeeper, describe_exit

log = logging.getLogger("sipphones.serve")

# How uvicorn ends a worker on purpose (stop, SIGHUP's replacement, Ctrl-C): the worker re-raises
# the signal after its graceful shutdown.
PLANNED_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)


class ChildWatch:
    def __init__(self, checkpoints: CheckpointKeeper | None, workers: bool):
        self.checkpoints = checkpoints
        self.workers = workers
        self._busy = False
        self._again = False

    def install(self) -> None:
        signal.signal(signal.SIGCHLD, self._on_sigchld)

    def _on_sigchld(self, signum, frame) -> None:  # noqa: ANN001
        if self._busy:          # a SIGCHLD while handling one: handled by the loop below
            self._again = True
            return
        self._busy = True
        try:
            again = True
            while again:
                self._again = False
                self.check()
                again = self._again
        except Exception:  # noqa: BLE001 - never into uvicorn's code
            log.exception("while looking at ended child processes")
        finally:
            self._busy = False

    def check(self) -> None:
        """Reap and report what has ended among this process's children."""
        if not self.workers:
            if self.checkpoints is not None:
                self.checkpoints.reap()
            return
        reported: set[int] = set()
        for _ in range(1000):  # bounded: each pass reaps one child or stops
            try:
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # no child at all
                return
            if ended is None:
                return
            pid = ended.si_pid
            if self.checkpoints is not None and pid == self.checkpoints.pid:
                if self.checkpoints.reap() is None:   # being stopped: ``stop`` reaps it
                    return
                continue
            if pid in reported:
                return
            reported.add(pid)
            multiprocessing = sys.modules.get("multiprocessing")
            if multiprocessing is not None:
                multiprocessing.active_children()   # joins (reaps) the workers that have ended
            if _still_there(pid):   # not a worker: not ours to reap
                return
            code = ended.si_status if ended.si_code == os.CLD_EXITED else -ended.si_status
            if code not in PLANNED_EXITS:
                log.warning("worker process [%d] %s%s", pid, describe_exit(code),
                            "; the supervisor starts a new one" if code < 0 else "")


def _still_there(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def watch_children(checkpoints: CheckpointKeeper | None, workers: int) -> ChildWatch:
    watch = ChildWatch(checkpoints, workers > 1)
    watch.install()
    return watch
