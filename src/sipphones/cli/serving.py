"""How ``sipphones serve`` runs uvicorn: the listening socket, one serving process, or a
supervisor of several worker processes of our own.

**The socket is bound here**, before anything is served, so that a busy port or a bad address is
one sentence (``ListenError``) and "listening" is printed only once the port is really bound
(and listening: a client that connects while the workers start waits in the backlog instead of
being refused). The socket is then handed to uvicorn through its public API:
``uvicorn.Server(config).run(sockets=[sock])`` in one process, ``Server.serve(sockets=[sock])`` in
each worker.

**Why a supervisor of our own** rather than ``uvicorn.run(workers=N)``: uvicorn's worker answers
its supervisor's health checks from a thread of its own. A second thread, even an idle one, makes
every mutex operation of the process atomic from then on (glibc takes a mutex without atomic
instructions only while the process has never had a second thread), and the request path takes
mutexes all the time (SQLite enters its connection mutex in every ``sqlite3_column_*`` call;
Python releases and retakes the GIL around every ``sqlite3_step``): one idle thread made a list
page of 30 cost ~137 -> ~156 µs of CPU. Keeping uvicorn's supervisor but answering from the
event loop meant replacing a class inside uvicorn, found by reading its source text: not
something a uvicorn release promises to keep. Here the worker answers the same kind of ping from
its event loop (a reader on the pipe; no thread), and the supervisor is ours: it starts the
workers (``multiprocessing``'s spawn context, as uvicorn does), pings each every
``PING_INTERVAL_S`` and replaces one that has not answered for ``SIPPHONES_WORKER_HEALTHCHECK_S``
(30 s: a worker's loop may block for up to SQLite's busy timeout, 10 s), replaces a worker that dies
(a warning unless it was told to stop; a back-off when replacements keep dying young), gives up
when a worker fails before it ever started (a broken app or configuration would fail the same
way every time), replaces every worker on SIGHUP (each replacement serving before its
predecessor is stopped), and on SIGINT/SIGTERM/SIGQUIT stops them all (SIGTERM: uvicorn's
graceful shutdown; SIGKILL after ``STOP_GRACE_S``). Workers stop by themselves if the supervisor
dies (``sipphones.parent_watch``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from typing import Any

log = logging.getLogger("sipphones.serve")

PING_INTERVAL_S = 1.0
HEALTHCHECK_TIMEOUT_S = 30.0
STOP_GRACE_S = 30.0
YOUNG_DEATH_S = 10.0          # a worker that dies younger than this is replaced after a back-off
BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
STARTUP_FAILURE = 3           # uvicorn's exit status for a server that could not start
# How workers end when told to (stop, SIGHUP's replacement, a terminal's Ctrl-C).
PLANNED_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)

__all__ = ["ListenError", "listen", "serve_one", "serve_workers", "Supervisor", "HEALTHCHECK_TIMEOUT_S"]


class ListenError(Exception):
    """The port cannot be listened on; the message is one sentence for the operator."""


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (as uvicorn binds: SO_REUSEADDR, IPv6 for
    an address with a colon). ``ListenError`` says why it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise ListenError(f"port {port} is already in use on {host} (another sipphones serve?); "
                              "stop it or choose another --port") from None
        if e.errno == errno.EACCES:
            raise ListenError(f"not allowed to listen on {where} (ports below 1024 need root); "
                              "choose another --port") from None
        reason = e.strerror or str(e)
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def serve_one(config_kwargs: dict[str, Any], sock: socket.socket) -> int:
    """Serve in this process until told to stop; the exit status (``STARTUP_FAILURE`` when the
    server never started)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(**config_kwargs))
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILURE


def serve_workers(config_kwargs: dict[str, Any], sock: socket.socket, workers: int,
                  healthcheck_timeout: float = HEALTHCHECK_TIMEOUT_S) -> int:
    """Serve with ``workers`` worker processes under a ``Supervisor`` until told to stop; the exit
    status."""
    return Supervisor(config_kwargs, sock, workers, healthcheck_timeout=healthcheck_timeout).run()


# --- the worker ---------------------------------------------------------------------------------

def _worker_main(config_kwargs: dict[str, Any], sock: socket.socket, conn) -> None:  # noqa: ANN001
    """A worker process: serve on the inherited socket, answering the supervisor's pings from the
    event loop."""
    from sipphones import gc_pause

    gc_pause.pause()  # until the app has started (its lifespan resumes it): see sipphones.gc_pause
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(**config_kwargs))

    def answer() -> None:
        try:
            conn.recv_bytes(64)          # the supervisor's ping
            conn.send_bytes(b"1" if server.started else b"0")
        except (EOFError, OSError):      # the supervisor is gone: parent_watch stops this worker
            asyncio.get_running_loop().remove_reader(conn.fileno())

    async def main() -> None:
        asyncio.get_running_loop().add_reader(conn.fileno(), answer)
        await server.serve(sockets=[sock])

    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


class Worker:
    """One worker process as the supervisor sees it."""

    def __init__(self, context, config_kwargs: dict[str, Any], sock: socket.socket):  # noqa: ANN001
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(config_kwargs, sock, child_conn),
                                       name="sipphones-worker")
        self._child_conn = child_conn
        self.started_at = 0.0
        self.ping_sent_at: float | None = None
        self.last_ping_at = 0.0
        self.ready = False

    def start(self, now: float) -> None:
        self.process.start()
        self._child_conn.close()     # the worker's end lives in the worker
        self.started_at = self.last_ping_at = now

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def alive(self) -> bool:
        return self.process.is_alive()

    def exit_code(self) -> int | None:
        return self.process.exitcode

    def take_answers(self) -> None:
        try:
            while self.conn.poll():
                self.ready = self.conn.recv_bytes(64) == b"1" or self.ready
                self.ping_sent_at = None
        except (EOFError, OSError):
            pass                     # dead: seen by alive()

    def ping_if_due(self, now: float) -> None:
        if self.ping_sent_at is None and now - self.last_ping_at >= PING_INTERVAL_S:
            try:
                self.conn.send_bytes(b"p")
            except OSError:
                return
            self.ping_sent_at = self.last_ping_at = now

    def hung(self, now: float, timeout: float) -> bool:
        return self.ping_sent_at is not None and now - self.ping_sent_at > timeout

    def terminate(self) -> None:
        if self.process.exitcode is None and self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        if self.process.exitcode is None:
            self.process.kill()

    def close(self) -> None:
        self.conn.close()


class Supervisor:
    """Keeps ``workers`` worker processes serving on ``sock`` (see the module's docstring)."""

    def __init__(self, config_kwargs: dict[str, Any], sock: socket.socket, workers: int, *,
                 healthcheck_timeout: float = HEALTHCHECK_TIMEOUT_S, stop_grace: float = STOP_GRACE_S):
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")
        self.config_kwargs = config_kwargs
        self.sock = sock
        self.count = workers
        self.healthcheck_timeout = healthcheck_timeout
        self.stop_grace = stop_grace
        self.workers: list[Worker] = []
        self.signals: list[int] = []
        self.young_deaths = 0
        self.restart_at: list[float] = []   # when to start the workers that wait out a back-off
        self.status = 0

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: self.signals.append(signum))
        now = time.monotonic()
        for _ in range(self.count):
            self._start(now)
        try:
            while self._step():
                pass
        finally:
            self._stop_all()
        return self.status

    def _step(self) -> bool:
        """One round: signals, answers, deaths, hangs, pings. False when it is time to stop."""
        from multiprocessing.connection import wait

        waitables = [w.process.sentinel for w in self.workers] + [w.conn for w in self.workers]
        wait(waitables, timeout=0.5)
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGHUP:
                self._replace_all()
            else:
                return False
        now = time.monotonic()
        for worker in list(self.workers):
            worker.take_answers()
            if not worker.alive():
                if not self._ended(worker, now):
                    return False
            elif worker.hung(now, self.healthcheck_timeout):
                log.warning("worker process [%d] has not answered for %.0f s; replacing it",
                            worker.pid, self.healthcheck_timeout)
                worker.kill()
                worker.process.join(5)
                self._retire(worker)
                self._start(now)
            else:
                worker.ping_if_due(now)
        due = [t for t in self.restart_at if t <= now]
        self.restart_at = [t for t in self.restart_at if t > now]
        for _ in due:
            self._start(now)
        return True

    def _ended(self, worker: Worker, now: float) -> bool:
        """A worker has ended on its own: report it and plan its replacement; False when the
        supervisor must give up."""
        from sipphones.storage.checkpoints import describe_exit

        worker.process.join(1)
        code = worker.exit_code()
        self._retire(worker)
        if code == STARTUP_FAILURE and not worker.ready:
            log.error("worker process [%d] could not start; stopping", worker.pid)
            self.status = STARTUP_FAILURE
            return False
        if code not in PLANNED_EXITS:
            log.warning("worker process [%d] %s; the supervisor starts a new one", worker.pid,
                        describe_exit(code if code is not None else 1))
        if now - worker.started_at < YOUNG_DEATH_S:
            self.young_deaths += 1
        else:
            self.young_deaths = 0
        delay = BACKOFF_S[min(self.young_deaths, len(BACKOFF_S) - 1)] if self.young_deaths else 0.0
        self.restart_at.append(now + delay)
        return True

    def _start(self, now: float) -> Worker:
        worker = Worker(self.context, self.config_kwargs, self.sock)
        worker.start(now)
        self.workers.append(worker)
        return worker

    def _retire(self, worker: Worker) -> None:
        worker.close()
        if worker in self.workers:
            self.workers.remove(worker)

    def _replace_all(self) -> None:
        """SIGHUP: each worker replaced by a new one that serves before the old one stops."""
        for old in list(self.workers):
            new = self._start(time.monotonic())
            deadline = time.monotonic() + self.healthcheck_timeout
            while not new.ready and new.alive() and time.monotonic() < deadline:
                new.ping_if_due(time.monotonic())
                if new.conn.poll(0.1):
                    new.take_answers()
                if any(s != signal.SIGHUP for s in self.signals):
                    return               # asked to stop meanwhile: the loop stops everyone
            if not new.ready:
                log.error("new worker process [%d] was not ready in time; keeping worker [%d]",
                          new.pid, old.pid)
                new.kill()
                new.process.join(5)
                self._retire(new)
                return
            old.terminate()
            old.process.join(self.stop_grace)
            if old.process.exitcode is None:
                old.kill()
                old.process.join(5)
            self._retire(old)

    def _stop_all(self) -> None:
        for worker in self.workers:
            worker.terminate()
        deadline = time.monotonic() + self.stop_grace
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.warning("worker process [%d] did not stop within %.0f s; killed", worker.pid, self.stop_grace)
                worker.kill()
                worker.process.join(5)
            worker.close()
        self.workers = []
