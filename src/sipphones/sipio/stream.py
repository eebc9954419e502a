"""SIP over TCP and TLS: a connection framed with ``StreamParser``, with RFC 5626 CRLF keep-alives.

See ``sipphones.sipio.transport`` for flows in general and the keep-alive rules.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from typing import TYPE_CHECKING

from sipphones.sip.config import Target, TargetTransport
from sipphones.sip.errors import ParseError
from sipphones.sip.parser import StreamParser

from .errors import ConnectionLost, ConnectionRefused, ConnectTimeout, NetworkError, ProtocolError, TransportError
from .tls import classify_tls_error, client_context, verify_name
from .transport import CRLF_PING, CRLF_PONG, Flow

if TYPE_CHECKING:
    from .manager import TransportManager

__all__ = ["StreamFlow"]


class _StreamProtocol(asyncio.Protocol):
    def __init__(self, flow: "StreamFlow"):
        self.flow = flow

    def connection_made(self, transport) -> None:
        self.flow._transport = transport

    def data_received(self, data: bytes) -> None:
        self.flow._on_data(data)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.flow._on_connection_lost(exc)


class StreamFlow(Flow):
    """A TCP or TLS connection, framed with ``StreamParser``."""

    def __init__(self, manager: "TransportManager", target: Target, key: tuple):
        super().__init__(manager, target, key)
        self._transport: asyncio.Transport | None = None
        self._parser = StreamParser(manager.limits)
        self._last_rx = 0.0
        self._pong_deadline: float | None = None
        self._keepalive_handle: asyncio.TimerHandle | None = None

    async def open(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        ctx: ssl.SSLContext | None = None
        name = None
        if self.transport is TargetTransport.TLS:
            ctx = client_context(self.manager.tls)
            name = verify_name(self.target)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _StreamProtocol(self), self.target.host, self.target.port, ssl=ctx,
                    server_hostname=name, ssl_handshake_timeout=timeout if ctx else None),
                timeout)
        except (ssl.SSLCertVerificationError, ssl.SSLError) as e:
            raise classify_tls_error(self.target, e) from None
        except ConnectionRefusedError:
            raise ConnectionRefused(self.target, "connection refused") from None
        except (asyncio.TimeoutError, TimeoutError):
            what = "connection or TLS handshake" if ctx is not None else "connection"
            raise ConnectTimeout(self.target, f"{what} not completed within {timeout:g}s") from None
        except ConnectionResetError as e:
            if ctx is not None:
                raise classify_tls_error(self.target, e) from None
            raise ConnectionLost(self.target, "connection reset while connecting") from None
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                raise ConnectionRefused(self.target, "connection refused") from None
            raise NetworkError(self.target, f"cannot connect: {e.strerror or e}") from None
        sockname = self._transport.get_extra_info("sockname")  # type: ignore[union-attr]
        self.local_host, self.local_port = sockname[:2]
        self._last_rx = loop.time()
        self._schedule_keepalive()

    def send(self, data: bytes) -> None:
        if self.closed or self._transport is None or self._transport.is_closing():
            raise self.error or ConnectionLost(self.target, "the connection is closed")
        self._transport.write(data)

    # keep-alive -------------------------------------------------------------------------------

    def _schedule_keepalive(self) -> None:
        interval = self.manager.keepalive_interval
        if not interval or self.closed:
            return
        loop = asyncio.get_running_loop()
        if self._pong_deadline is not None:
            when = self._pong_deadline
        else:
            when = self._last_rx + interval
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
        self._keepalive_handle = loop.call_at(when, self._keepalive_tick)

    def _keepalive_tick(self) -> None:
        self._keepalive_handle = None
        if self.closed:
            return
        now = asyncio.get_running_loop().time()
        if self._pong_deadline is not None and now >= self._pong_deadline:
            self._fail(ConnectionLost(self.target, f"no keep-alive pong within {self.manager.keepalive_timeout:g}s"))
            return
        if self._pong_deadline is None and now >= self._last_rx + self.manager.keepalive_interval:  # type: ignore[operator]
            try:
                self.send(CRLF_PING)
            except TransportError as e:
                self._fail(e)
                return
            self.manager.stats.keepalive_pings += 1
            self._pong_deadline = now + self.manager.keepalive_timeout
        self._schedule_keepalive()

    # input ------------------------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        if self._pong_deadline is not None:
            self._pong_deadline = None  # anything from the peer proves the flow alive
            self._schedule_keepalive()
        try:
            messages = self._parser.feed(data)
        except ParseError as e:
            for message in getattr(e, "messages", []):
                self.manager._dispatch(self, message)
            self._malformed(e)
            self._fail(ProtocolError(self.target, f"malformed SIP on the connection: {e}"))
            return
        pings = self._parser.take_pings()
        if pings and not self.closed:
            self._transport.write(CRLF_PONG * pings)  # type: ignore[union-attr]
        for message in messages:
            self.manager._dispatch(self, message)

    def _on_connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        detail = f"connection lost: {exc}" if exc else "connection closed by the peer"
        self._fail(ConnectionLost(self.target, detail))

    def _close_transport(self) -> None:
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
            self._keepalive_handle = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
