"""uvicorn's worker processes for ``sipphones serve --workers N``, kept single-threaded.

Why: uvicorn's supervisor checks each worker with a ping over a pipe, and the worker answers from
a thread of its own. A second thread, even an idle one, makes every mutex operation of the
process atomic from then on (glibc takes a mutex without atomic instructions only while the
process has never had a second thread), and the request path takes mutexes all the time: SQLite
enters its connection mutex in every ``sqlite3_column_*`` call and Python releases and retakes
the GIL around every ``sqlite3_step``. One idle thread makes an in-process SQLite list page of 30
cost ~137 -> ~156 µs of CPU; through ``serve --workers 2`` the list saved 15-19 µs per request
without the thread (bench/run.py-style runs, interleaved).

Here the worker answers the same pings from its event loop (a reader on the pipe): the supervisor
sees the same answers (the worker's "started" flag), the worker has no second thread. The one
difference is that a worker whose loop is blocked does not answer until it is free again, so
``serve`` gives the health check more time than the longest a statement may block the loop
(SQLite's busy timeout, 10 s).

Installed only where uvicorn's supervisor has the shape relied on (``install`` checks it); else
uvicorn runs as it comes.
"""

from __future__ import annotations

import asyncio
import inspect

import uvicorn
from uvicorn.server import Server
from uvicorn.supervisors import multiprocess

from sipphones import gc_pause

HEALTHCHECK_TIMEOUT_S = 30


def _answer_ping(loop: asyncio.AbstractEventLoop, conn, server: Server) -> None:
    try:
        conn.recv()                    # the supervisor's ping (a few bytes: a whole message is there)
        conn.send(server.started)
    except (EOFError, OSError):        # the supervisor is gone: nobody to answer any more
        loop.remove_reader(conn.fileno())


class LoopPongProcess(multiprocess.Process):
    """``uvicorn.supervisors.multiprocess.Process`` answering health checks on the event loop."""

    def target(self, sockets=None) -> None:  # runs in the worker process
        server = self.server
        conn = self.child_conn
        startup = server.startup

        async def startup_answering_pings(sockets=None) -> None:
            loop = asyncio.get_running_loop()
            loop.add_reader(conn.fileno(), _answer_ping, loop, conn, server)
            await startup(sockets=sockets)

        server.startup = startup_answering_pings
        gc_pause.pause()  # until the app has started (its lifespan resumes it): see sipphones.gc_pause
        server.run(sockets)


def supported() -> bool:
    """True when uvicorn's supervisor has the shape ``LoopPongProcess`` relies on: workers made by
    ``Multiprocess`` through the module's ``Process``, which answers pings on ``child_conn`` with
    ``server.started`` from a thread started in ``target``."""
    process = multiprocess.Process
    return (
        "Process(" in _source(multiprocess.Multiprocess)
        and "self.child_conn" in _source(process.__init__)
        and "self.server.started" in _source(process.pong)
        and "always_pong" in _source(process.target)
        and isinstance(inspect.getattr_static(process, "server", None), property)
        and inspect.iscoroutinefunction(Server.startup)
        and "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters
    )


def _source(obj) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError, AttributeError):
        return ""


def install() -> bool:
    """Make uvicorn's multi-process supervisor (in this process) start ``LoopPongProcess``
    workers; False, and nothing changed, when this uvicorn is not of the expected shape."""
    if multiprocess.Process is LoopPongProcess:
        return True
    if not supported():
        return False
    multiprocess.Process = LoopPongProcess
    return True
