"""uvicorn's httptools HTTP/1.1 protocol, writing each connection's output once per loop iteration.

Why: uvicorn writes a response in two ``transport.write`` calls, the status line and headers at
``http.response.start``, the body at ``http.response.body``, and uvloop sends each at once: two
``send`` system calls and two TCP segments per answer, and on loopback the kernel runs the
receiving side's work (and wakes the client) inside the sender's call. Under load these two
calls were a quarter of a create's server CPU (py-spy of ``bench/run.py --profile``, mostly the
first one). Here the transport handed to the protocol holds what is written during one loop
iteration and sends it with one ``write`` at the start of the next: the headers and the body of
an answer (and the answers to pipelined requests) leave in one call and one segment.

Nothing else changes: the bytes and their order are the same; an answer waits at most until the
end of the loop iteration it was written in (what the other requests of that iteration take);
``close`` and ``write_eof`` send what is held first, ``abort`` drops it as it drops the
transport's own buffer; everything else (flow control, addresses, reading) is the transport's.

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
- past ``http_max_connections`` open connections in the worker, a new connection's requests are
  answered with a Zoom-shaped 503 and the connection is closed;
- an unparsable request is answered with a Zoom-shaped 400 instead of uvicorn's text/plain one.

Body limits are not here: they are at the ASGI level (``sipphones.api.body``), under every protocol.
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# Only what ``serve``'s supervisor may import (tests/test_startup_imports.py): the app's libraries
# (orjson, Starlette) are imported where a worker first needs them.
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


async def _too_many_connections(scope, receive, send) -> None:
    """The ASGI application of a connection opened past the cap: Zoom's 503, then the connection closes."""
    from sipphones.api.responses import error_response

    response = error_response(TooManyConnections(), {"connection": "close", "retry-after": "1"})
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class OneSendProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` over a ``OneSendTransport``, with the limits of the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits()
        self.watch = _watch(self.loop)
        self.deadline: float | None = None   # loop time by which the awaited bytes must have come
        self.in_body = False                 # between a head's end and its message's end
        self.head_bytes = 0                  # bytes of the current request head received so far
        self.heads_ended = 0                 # heads completed (to see one end within a read)
        self.head_started = False            # a request head's first byte came, not yet its end

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over_cap = len(self.watch.live) >= self.limits.max_connections
        self.watch.add(self)
        super().connection_made(OneSendTransport(transport, self.loop))  # type: ignore[arg-type]
        self.deadline = self.loop.time() + self.limits.idle_timeout
        if over_cap:
            self.app = _too_many_connections

    def connection_lost(self, exc: Exception | None) -> None:
        self.watch.discard(self)
        self.deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.in_body:
            super().data_received(data)
            return
        # In a request head (or before one): count it. When this read takes the head past the
        # limit, only the part up to the head's end counts (the rest may be its body or the
        # following requests); past the limit, nothing is parsed.
        limit = self.limits.max_head_bytes
        if self.head_bytes + len(data) > limit and self.head_bytes + _head_part(data) > limit:
            self.refuse(HeadTooLarge(limit))
            return
        ended = self.heads_ended
        super().data_received(data)
        if ended == self.heads_ended:
            self.head_bytes += len(data)          # no head ended: all of it was head
            if self.head_bytes > limit and not self.transport.is_closing():
                self.refuse(HeadTooLarge(limit))
        else:
            self.head_bytes = 0                    # a head ended in this read; the next starts at 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True
        self.deadline = self.loop.time() + self.limits.header_timeout

    def on_headers_complete(self) -> None:
        self.deadline = None
        self.head_started = False
        self.in_body = True
        self.heads_ended += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_body = False
        super().on_message_complete()

    def deadline_passed(self) -> None:
        """The sweep's call: no first byte, or no complete head, in time."""
        self.deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # Answering an earlier (pipelined) request, reading paused: not the client's delay. Look again later.
            self.deadline = self.loop.time() + self.limits.header_timeout
            return
        if self.head_started:                      # a head had started: say why it ends
            self.refuse(RequestTimeout())
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparsable request, in Zoom's shape."""
        self.refuse(InvalidHttpRequest())

    def refuse(self, error: ZoomError) -> None:
        """Answer ``error`` in Zoom's shape and close, unless an answer is under way (then just close)."""
        self.deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_raw_error(error, self.server_state.default_headers))
        self.transport.close()


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


def _raw_error(error: ZoomError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    import orjson

    body = orjson.dumps(error.body())
    lines = [STATUS_LINE[error.status]]
    for name, value in default_headers:
        lines += [name, b": ", value, b"\r\n"]
    lines += [b"x-zm-trackingid: ", os.urandom(12).hex().encode(), b"\r\n",
              b"content-type: application/json\r\n",
              b"content-length: ", str(len(body)).encode(), b"\r\n",
              b"connection: close\r\n\r\n", body]
    return b"".join(lines)
