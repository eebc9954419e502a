"""SIP over UDP, TCP and TLS on asyncio: flows to targets, shared, with responses routed by branch.

A *flow* is the path to one target (RFC 5626's word): a connected UDP socket, or a TCP/TLS
connection. The :class:`TransportManager` keeps one flow per (transport, host, port[, TLS name])
and hands the same flow to every binding that goes to that target, so ten thousand phones on one
registrar use one UDP socket or one TCP connection, not ten thousand. Callers ``acquire`` a flow
and ``release`` it; a flow nobody uses is closed after ``idle_close`` seconds.

Why a *connected* UDP socket per target rather than one unconnected socket for everything: only
a connected socket receives the ICMP port-unreachable of its peer (as ``ECONNREFUSED`` on the
next receive or send), and that turns "server down" from a 32 s timeout into an immediate,
typed ``ConnectionRefused``. The number of sockets is the number of distinct servers,
not of phones. (A server that answers from another address or port than the one we sent to is
not heard on a connected socket; registrars answer from their listening socket.)

Incoming bytes are parsed with ``sipphones.sip.parser`` (``parse_message`` per datagram,
``StreamParser`` per connection). Responses are handed to whoever ``expect``-ed their top-Via
branch (the transaction key of RFC 3261 §17.1.3); requests from the server (an OPTIONS probe,
say) are answered on the spot: 200 to OPTIONS, 405 to anything else, since this UA only
registers. Malformed input is never fatal: on UDP the datagram is dropped and remembered on the
flow (``last_malformed``) so a timeout can be explained; on a stream the framing is lost, so the
connection is closed and its users get a ``ProtocolError``.

Stream flows send RFC 5626 §4.4.1 CRLF keep-alives: after ``keepalive_interval`` seconds without
receiving anything, a double CRLF; if nothing (the single-CRLF pong or any message) arrives within
``keepalive_timeout``, the flow is declared dead and its users get ``ConnectionLost``. A double
CRLF from the server is answered with a single CRLF.

The code is split along those lines: this module has what every flow shares (the :class:`Flow`
base, the listeners' types, the counters); ``udp.py`` the connected UDP socket (:class:`UdpFlow`),
``stream.py`` TCP/TLS framing and keep-alives (:class:`StreamFlow`), ``manager.py`` the pool and
the routing (:class:`TransportManager`). UDP coalescing (datagrams sent while a batch of received
ones is handled are held and sent when it ends) lives in ``UdpFlow`` and
``TransportManager.coalesce_udp``; measured: -12.7 % engine CPU per registration with it
(``bench/ab_optimisations.py coalesce``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from sipphones.sip.config import Target, TargetTransport
from sipphones.sip.errors import ParseError
from sipphones.sip.message import Response

from sipphones._mypyc import mypyc_attr

from .errors import TransportError

if TYPE_CHECKING:
    from .manager import TransportManager

__all__ = ["Flow", "ResponseHandler", "FlowListener", "MalformedListener", "TransportStats",
           "CRLF_PING", "CRLF_PONG"]

log = logging.getLogger(__name__)

ResponseHandler = Callable[[Response, "Flow"], None]
FlowListener = Callable[["Flow", TransportError], None]
MalformedListener = Callable[["Flow", ParseError], None]

CRLF_PING = b"\r\n\r\n"
CRLF_PONG = b"\r\n"


@dataclass
class TransportStats:
    """Counters for metrics and tests."""

    datagrams_in: int = 0
    messages_in: int = 0
    malformed: int = 0
    unmatched_responses: int = 0
    requests_answered: int = 0
    keepalive_pings: int = 0
    flows_opened: int = 0
    flows_failed: int = 0


@mypyc_attr(allow_interpreted_subclasses=True)   # base of UdpFlow, which bench/sip_micro.py subclasses
class Flow:
    """One path to a target. ``local_host``/``local_port`` are what Via and Contact carry."""

    def __init__(self, manager: "TransportManager", target: Target, key: tuple):
        self.manager = manager
        self.target = target
        self.key = key
        self.transport: TargetTransport = target.transport
        self.local_host = ""
        self.local_port = 0
        self.users = 0
        self.closed = False
        self.error: TransportError | None = None
        self.last_malformed: ParseError | None = None
        self.malformed_count = 0
        self._listeners: set[FlowListener] = set()
        self._malformed_listeners: set[MalformedListener] = set()
        self._idle_handle: asyncio.TimerHandle | None = None

    # --- used by the driver --------------------------------------------------------------------

    @property
    def reliable(self) -> bool:
        return self.transport.reliable

    def send(self, data: bytes) -> None:
        """Queue bytes for the peer; raises ``TransportError`` if the flow is already broken."""
        raise NotImplementedError

    def add_listener(self, listener: FlowListener) -> None:
        """Be told (once per failure) when the flow breaks or its peer is unreachable."""
        self._listeners.add(listener)

    def remove_listener(self, listener: FlowListener) -> None:
        self._listeners.discard(listener)

    def add_malformed_listener(self, listener: MalformedListener) -> None:
        """Be told about malformed input that did not break the flow (a bad UDP datagram), so a
        timeout that follows can be explained as "the server answered garbage"."""
        self._malformed_listeners.add(listener)

    def remove_malformed_listener(self, listener: MalformedListener) -> None:
        self._malformed_listeners.discard(listener)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self.target} local={self.local_host}:{self.local_port} {state} users={self.users}>"

    # --- internal ------------------------------------------------------------------------------

    def _notify(self, error: TransportError) -> None:
        for listener in list(self._listeners):
            try:
                listener(self, error)
            except Exception:  # a listener bug must not break the transport for everyone else
                log.exception("flow listener failed")

    def _fail(self, error: TransportError) -> None:
        """The flow is unusable: close it, drop it from the pool, tell its users."""
        if self.closed:
            return
        self.error = error
        self.manager.stats.flows_failed += 1
        self._close_transport()
        self._mark_closed()
        self._notify(error)

    def _mark_closed(self) -> None:
        self.closed = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        self.manager._forget_flow(self)

    def _close_transport(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close deliberately (no listener is told: they asked for it or are gone)."""
        if self.closed:
            return
        self._close_transport()
        self._mark_closed()

    def _malformed(self, error: ParseError) -> None:
        self.last_malformed = error
        self.malformed_count += 1
        self.manager.stats.malformed += 1
        log.debug("malformed SIP from %s: %s", self.target, error)
        for listener in list(self._malformed_listeners):
            try:
                listener(self, error)
            except Exception:
                log.exception("malformed-input listener failed")
