"""The HTTP/1.1 protocol of ``sipphones serve``: uvicorn's httptools protocol, wrapped, writing
each connection's output once per loop iteration and guarding the HTTP surface.

Why one send: uvicorn writes a response in two ``transport.write`` calls, the status line and
headers at ``http.response.start``, the body at ``http.response.body``, and uvloop sends each at
once: two ``send`` system calls and two TCP segments per answer, and on loopback the kernel runs
the receiving side's work (and wakes the client) inside the sender's call. Under load these two
calls were a quarter of a create's server CPU (py-spy of ``bench/run.py --profile``, mostly the
first one). Here the transport handed to uvicorn's protocol holds what is written during one loop
iteration and sends it with one ``write`` at the start of the next: the headers and the body of
an answer (and the answers to pipelined requests) leave in one call and one segment. Measured
(bench/README.md, "Optimisations and why they stay"): +33 % req/s on the bare endpoint, +10 % on
create, +43 % on the list page (quiet machine, before this module wrapped uvicorn's protocol
instead of subclassing it); as it is now, against uvicorn's own protocol in the same run
(``bench/ab_optimisations.py one-send``), −9.5 % server CPU per request of the bare endpoint.
The second parser costs about what it looks like: against the subclassing version, +7 % CPU per
bare request (inside that run's noise), ~2 µs, about 1 % of a create.

Nothing else changes: the bytes and their order are the same; an answer waits at most until the
end of the loop iteration it was written in (what the other requests of that iteration take);
``close`` and ``write_eof`` send what is held first, ``abort`` drops it as it drops the
transport's own buffer; everything else (flow control, addresses, reading) is the transport's.

How it sits on uvicorn: by composition. :class:`OneSendProtocol` is an ``asyncio.Protocol`` of
its own that uvicorn's ``http=`` setting loads and constructs as it constructs its own protocols
(``config=``, ``server_state=``, ``app_state=``, ``_loop=``); it builds uvicorn's httptools
protocol inside with the same arguments and forwards the ``asyncio.Protocol`` calls to it, the
transport wrapped in a :class:`OneSendTransport`. The request heads are followed with a parser
of its own (httptools' public ``HttpRequestParser``, fed the same bytes first), not through
uvicorn's callbacks. What still needs uvicorn beyond that constructor contract is in one place,
:func:`uvicorn_answer_under_way` and :func:`uvicorn_default_headers`, checked when this module
is imported by :func:`check_uvicorn` (an incompatible uvicorn stops the worker with a sentence,
no silent fallback; tests/api/test_http_protocol.py runs the check against the installed uvicorn).

``sipphones serve`` runs with this protocol where httptools is installed (``PROTOCOL``), uvicorn's
own choice otherwise.

The protocol also guards the HTTP surface where uvicorn's httptools protocol does not (the
settings are ``SIPPHONES_HTTP_*``, read once per worker process):

- a request head (request line and headers) over ``http_max_head_bytes`` is refused with a
  Zoom-shaped 431 and the connection closed, as soon as the bytes received show it: httptools
  itself would hold a header of any size in memory;
- a new connection must send its first byte within ``http_idle_timeout_s``, and a request head
  must be complete ``http_header_timeout_s`` after its first byte; else the connection is closed
  (a head started too slowly gets a Zoom-shaped 408 first). One sweep per worker and second or
  so checks every connection's deadline (no timer per request);
- past ``http_max_connections`` open connections in the worker, a new connection's request is
  answered with a Zoom-shaped 503 and the connection is closed;
- an unparsable request is answered with a Zoom-shaped 400 instead of uvicorn's text/plain one
  (the bytes that do not parse never reach uvicorn's protocol).

Body limits are not here: they are at the ASGI level (``sipphones.api.body``), under every protocol.
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Only what ``serve``'s supervisor may import (tests/test_startup_imports.py): the app's libraries
# (orjson, Starlette) are imported where a worker first needs them.
from sipphones.api.connection import DROP_CONNECTION
from sipphones.errors import HeadTooLarge, InvalidHttpRequest, RequestTimeout, TooManyConnections, ZoomError

PROTOCOL = "sipphones.api.http_protocol:OneSendProtocol"


class OneSendTransport:
    """A transport that sends what is written to it in one loop iteration with one ``write``."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._send_held)
        self._held.append(data)

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _send_held(self) -> None:
        held = self._held
        if not held:
            return
        self._held = []
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(chunk) for chunk in self._held)

    def __getattr__(self, name: str) -> Any:  # the rest of the Transport API, as it is
        return getattr(self._transport, name)


@dataclass(frozen=True)
class Limits:
    max_head_bytes: int
    idle_timeout: float
    header_timeout: float
    max_connections: int


@functools.cache
def limits() -> Limits:
    """This worker's limits, from its ``SIPPHONES_HTTP_*`` settings (read once)."""
    from sipphones.config import load_settings

    s = load_settings()
    return Limits(s.http_max_head_bytes, float(s.http_idle_timeout_s), float(s.http_header_timeout_s),
                  s.http_max_connections)


SWEEP_INTERVAL_S = 0.5


class Watch:
    """The open connections of one event loop, and the sweep that enforces their deadlines."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.live: set[OneSendProtocol] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def add(self, protocol: "OneSendProtocol") -> None:
        self.live.add(protocol)
        if self._sweep is None:
            self._sweep = self.loop.call_later(SWEEP_INTERVAL_S, self.sweep)

    def discard(self, protocol: "OneSendProtocol") -> None:
        self.live.discard(protocol)

    def sweep(self) -> None:
        now = self.loop.time()
        expired = [p for p in self.live if p.deadline is not None and p.deadline <= now]
        for protocol in expired:
            protocol.deadline_passed()
        self._sweep = self.loop.call_later(SWEEP_INTERVAL_S, self.sweep) if self.live else None


_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watch]" = weakref.WeakKeyDictionary()


def _watch(loop: asyncio.AbstractEventLoop) -> Watch:
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = Watch(loop)
    return watch


# --- What this module needs of uvicorn beyond the ``http=`` constructor contract --------------------
#
# uvicorn documents ``http=`` as a protocol class it constructs with ``config``, ``server_state``,
# ``app_state`` and ``_loop`` (uvicorn/server.py, ``create_protocol``), and httptools' protocol as
# its ``--http httptools`` choice. Two more things are read here, nowhere else: whether uvicorn's
# protocol is answering a request (so that a refusal never cuts into an answer), and the default
# headers uvicorn puts on its answers (``date``, ``server``), which the refusals carry too.

def uvicorn_answer_under_way(inner: HttpToolsProtocol) -> bool:
    """Whether uvicorn's protocol has a request whose answer is not complete (its ``cycle``)."""
    cycle = inner.cycle
    return cycle is not None and not cycle.response_complete


def uvicorn_default_headers(server_state: Any) -> list[tuple[bytes, bytes]]:
    """The headers uvicorn adds to every answer of this server (``ServerState.default_headers``)."""
    return server_state.default_headers


class IncompatibleUvicorn(RuntimeError):
    pass


def check_uvicorn() -> None:
    """Raise ``IncompatibleUvicorn`` (a sentence naming the version) unless the installed uvicorn
    has what the two functions above read: run when this module is imported, so a worker on an
    incompatible uvicorn fails to load its protocol and ``serve`` stops, saying why."""
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.server import ServerState

    def assigns(cls: Any, name: str) -> bool:     # ``self.<name> = ...`` in ``cls.__init__``
        init = getattr(cls, "__init__", None)
        return name in getattr(getattr(init, "__code__", None), "co_names", ())

    problems = []
    if not issubclass(HttpToolsProtocol, asyncio.Protocol):
        problems.append("its httptools protocol is no asyncio.Protocol")
    if not assigns(HttpToolsProtocol, "cycle"):
        problems.append("its httptools protocol keeps no 'cycle'")
    if not assigns(getattr(httptools_impl, "RequestResponseCycle", None), "response_complete"):
        problems.append("its request cycle keeps no 'response_complete'")
    if not assigns(ServerState, "default_headers"):
        problems.append("its server state keeps no 'default_headers'")
    if problems:
        raise IncompatibleUvicorn(
            f"uvicorn {uvicorn.__version__} is not compatible with sipphones' HTTP protocol "
            f"({'; '.join(problems)}): install the uvicorn version pyproject.toml names, or run "
            "'sipphones serve --http httptools'.")


check_uvicorn()


class OneSendProtocol(asyncio.Protocol):
    """uvicorn's ``HttpToolsProtocol`` inside, over a ``OneSendTransport``, with the limits of the
    module's docstring (see there for how it is built on uvicorn)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.inner = HttpToolsProtocol(config=config, server_state=server_state, app_state=app_state, _loop=_loop)
        self.server_state = server_state
        self.loop = _loop or asyncio.get_event_loop()
        self.limits = limits()
        self.watch = _watch(self.loop)
        self.parser = httptools.HttpRequestParser(self)   # ours: head boundaries, parse errors
        try:   # as uvicorn sets its own parser, so that both accept the same bytes
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        except AttributeError:  # pragma: no cover - httptools < 0.6.3
            pass
        self.transport: OneSendTransport | None = None
        self.over_cap = False                # opened past the connection cap: answered 503
        self.deadline: float | None = None   # loop time by which the awaited bytes must have come
        self.head_bytes = 0                  # bytes of the current request head received so far
        self.heads_ended = 0                 # heads completed (to see one end within a read)
        self.head_started = False            # a request head's first byte came, not yet its end
        self.in_body = False                 # between a head's end and its message's end
        self.url = b""                       # the current request's target

    # --- asyncio.Protocol: checked, then forwarded to uvicorn's protocol -------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.over_cap = len(self.watch.live) >= self.limits.max_connections
        self.watch.add(self)
        self.transport = OneSendTransport(transport, self.loop)  # type: ignore[arg-type]
        self.inner.connection_made(self.transport)  # type: ignore[arg-type]
        self.deadline = self.loop.time() + self.limits.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.watch.discard(self)
        self.deadline = None
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self.in_body:
            # In a request head (or before one): count it. When this read takes the head past
            # the limit, only the part up to the head's end counts (the rest may be its body or
            # the following requests); past the limit, nothing is parsed.
            limit = self.limits.max_head_bytes
            if self.head_bytes + len(data) > limit and self.head_bytes + _head_part(data) > limit:
                self.refuse(HeadTooLarge(limit))
                return
        in_head, ended = not self.in_body, self.heads_ended
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass                # an Upgrade request (no WebSocket here): uvicorn's protocol decides
        except httptools.HttpParserError:
            self.refuse(InvalidHttpRequest())
            return
        if transport.is_closing():   # refused by a callback (over the cap)
            return
        if in_head:
            if ended == self.heads_ended:
                self.head_bytes += len(data)          # no head ended: all of it was head
                if self.head_bytes > self.limits.max_head_bytes:
                    self.refuse(HeadTooLarge(self.limits.max_head_bytes))
                    return
            else:
                self.head_bytes = 0                    # a head ended in this read; the next starts at 0
        elif ended != self.heads_ended:
            self.head_bytes = 0
        if not self.over_cap:
            # The request tasks uvicorn's protocol starts in this call copy this context: an
            # emulator fault rule can drop this connection (sipphones.api.connection).
            DROP_CONNECTION.set(self.drop)
            self.inner.data_received(data)

    # --- our parser's callbacks (httptools calls them while ``feed_data`` runs) ------------------

    def on_message_begin(self) -> None:
        self.head_started = True
        self.url = b""
        self.deadline = self.loop.time() + self.limits.header_timeout

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        # The target as uvicorn's protocol parses it (``CONNECT host:port`` does not parse): an
        # error here is answered as any unparsable request, before uvicorn's protocol sees it.
        httptools.parse_url(self.url)
        self.deadline = None
        self.head_started = False
        self.in_body = True
        self.heads_ended += 1
        if self.over_cap:
            self.refuse(TooManyConnections(), retry_after=b"1")

    def on_message_complete(self) -> None:
        self.in_body = False

    # --- deadlines and refusals ------------------------------------------------------------------

    def deadline_passed(self) -> None:
        """The sweep's call: no first byte, or no complete head, in time."""
        self.deadline = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if uvicorn_answer_under_way(self.inner):
            # Answering an earlier (pipelined) request, reading paused: not the client's delay. Look again later.
            self.deadline = self.loop.time() + self.limits.header_timeout
            return
        if self.head_started:                      # a head had started: say why it ends
            self.refuse(RequestTimeout())
        else:
            transport.close()

    def drop(self) -> None:
        """Closes the connection at once, without an answer (nothing held is sent)."""
        self.deadline = None
        if self.transport is not None:
            self.transport.abort()

    def refuse(self, error: ZoomError, retry_after: bytes | None = None) -> None:
        """Answer ``error`` in Zoom's shape and close, unless an answer is under way (then just close)."""
        self.deadline = None
        transport = self.transport
        if transport is None:
            return
        if not uvicorn_answer_under_way(self.inner):
            transport.write(_raw_error(error, uvicorn_default_headers(self.server_state), retry_after))
        transport.close()


def _head_part(data: bytes) -> int:
    """How many bytes of ``data`` (read while a head is awaited) may belong to that head: up to the
    first blank line, or all of it. When ``data`` could finish a blank line begun in the previous
    read, a few bytes (a head ends there, or the next read counts it all)."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return end + 4
    if data[:1] == b"\n" or data[:2] == b"\r\n":
        return 3
    return len(data)


def _raw_error(error: ZoomError, default_headers: list[tuple[bytes, bytes]],
               retry_after: bytes | None = None) -> bytes:
    import orjson

    body = orjson.dumps(error.body())
    lines = [b"HTTP/1.1 %d %s\r\n" % (error.status, HTTPStatus(error.status).phrase.encode())]
    for name, value in default_headers:
        lines += [name, b": ", value, b"\r\n"]
    if retry_after is not None:
        lines += [b"retry-after: ", retry_after, b"\r\n"]
    lines += [b"x-zm-trackingid: ", os.urandom(12).hex().encode(), b"\r\n",
              b"content-type: application/json\r\n",
              b"content-length: ", str(len(body)).encode(), b"\r\n",
              b"connection: close\r\n\r\n", body]
    return b"".join(lines)
