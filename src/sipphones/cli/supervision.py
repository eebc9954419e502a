"""What ``serve``'s own process notices about its children: it handles SIGCHLD.

- The WAL checkpoint process (``storage.checkpoints.CheckpointKeeper``): when it dies it is
  reaped (no zombie), reported as a warning and restarted with a back-off. With one worker its
  parent is the serving process itself, with several the supervisor: either way this process.

No thread: the handler runs on the main thread between two of uvicorn's steps (the supervisor's
loop, or the one-process server's event loop), and catches everything (an exception raised by a
signal handler would surface in whatever uvicorn was doing). This process must therefore be the
only user of SIGCHLD, which ``serve`` is (it starts no other subprocess).
"""

from __future__ import annotations

import logging
import signal

from sipphones.storage.checkpoints import CheckpointKeeper

log = logging.getLogger("sipphones.serve")


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
        if self.checkpoints is not None:
            self.checkpoints.reap()


def watch_children(checkpoints: CheckpointKeeper | None, workers: int) -> ChildWatch:
    watch = ChildWatch(checkpoints, workers > 1)
    watch.install()
    return watch
