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
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


class OneSendProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` over a ``OneSendTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneSendTransport(transport, self.loop))  # type: ignore[arg-type]
