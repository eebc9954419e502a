"""What ``serve``'s own process notices about its checkpoint process: it handles SIGCHLD.

When the WAL checkpoint process (``storage.checkpoints.CheckpointKeeper``) dies it is reaped (no
zombie), reported as a warning and restarted with a back-off. With one worker its parent is the
serving process itself, with several the supervisor: either way this process. (Workers that die
are the supervisor's business: ``cli.serving``.)

No thread: the handler runs on the main thread between two steps of the serving loop, and
catches everything (an exception raised by a signal handler would surface in whatever uvicorn
or the supervisor was doing). It reaps only the checkpoint process's own pid, so the workers'
``multiprocessing`` bookkeeping is left alone.
"""

from __future__ import annotations

import logging
import signal

from sipphones.storage.checkpoints import CheckpointKeeper

log = logging.getLogger("sipphones.serve")


class ChildWatch:
    def __init__(self, checkpoints: CheckpointKeeper | None):
        self.checkpoints = checkpoints
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
            for _ in range(100):    # bounded: each pass reaps at most the checkpoint process
                self._again = False
                self.check()
                if not self._again:
                    break
        except Exception:  # noqa: BLE001 - never into the serving loop
            log.exception("while looking at ended child processes")
        finally:
            self._busy = False

    def check(self) -> None:
        """Reap and report the checkpoint process if it has ended."""
        if self.checkpoints is not None:
            self.checkpoints.reap()


def watch_children(checkpoints: CheckpointKeeper | None) -> ChildWatch | None:
    """Watch the checkpoint process (None: nothing to watch)."""
    if checkpoints is None:
        return None
    watch = ChildWatch(checkpoints)
    watch.install()
    return watch
