"""A worker of ``serve --workers N`` ends when its supervisor is gone.

uvicorn's workers are ``multiprocessing`` children of the supervisor process. Killed with SIGKILL
(or by the OOM killer), the supervisor could not tell them anything: they went on serving on the
port they share, unsupervised and without the WAL checkpoint process, and a new ``serve`` could
not bind it. So each worker watches its parent from its event loop, without a thread (see
``cli.serving`` for why a worker stays single-threaded): ``multiprocessing.parent_process()``
(public) gives the parent's ``sentinel``, the read end of a pipe whose write end only the
supervisor holds, which becomes readable when the supervisor process has exited, however it
ended. (The kernel's PR_SET_PDEATHSIG would fire when the supervisor's *thread* that started the
worker ends, and cannot be armed for a worker by its parent through ``multiprocessing``.)

The worker then logs a warning and stops as on a SIGTERM (uvicorn's graceful shutdown: open
requests are answered, the lifespan's shutdown runs); a second SIGTERM ``GRACE_S`` later makes
uvicorn stop waiting for open connections, and ``HARD_EXIT_S`` after the first one the process
exits regardless.

A process that is not a multiprocessing child (the one-process ``serve``, whose parent is a
shell or a service manager; tests) has no supervisor and watches nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Callable

GRACE_S = 10.0
HARD_EXIT_S = 20.0

log = logging.getLogger("sipphones.serve")


def watch(loop: asyncio.AbstractEventLoop, grace: float = GRACE_S,
          hard_exit: float = HARD_EXIT_S) -> Callable[[], None] | None:
    """Stop this process when its multiprocessing parent exits; a function that stops watching
    (for the lifespan's shutdown), or None when there is no such parent."""
    multiprocessing = sys.modules.get("multiprocessing")   # a multiprocessing child has it imported
    parent = multiprocessing.parent_process() if multiprocessing is not None else None
    if parent is None:
        return None
    sentinel = parent.sentinel

    def parent_gone() -> None:
        loop.remove_reader(sentinel)
        log.warning("worker process [%d]: its supervisor [%d] is gone; stopping", os.getpid(), parent.pid)
        signal.raise_signal(signal.SIGTERM)                       # uvicorn's graceful shutdown
        loop.call_later(grace, signal.raise_signal, signal.SIGTERM)   # uvicorn: stop waiting for connections
        loop.call_later(hard_exit, os._exit, 1)

    loop.add_reader(sentinel, parent_gone)
    return lambda: loop.remove_reader(sentinel)
