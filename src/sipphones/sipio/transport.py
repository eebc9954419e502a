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
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import ssl
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, cast

from sipphones.sip.config import Target, TargetTransport
from sipphones.sip.errors import ParseError
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.parser import DEFAULT_LIMITS, Limits, StreamParser, is_keepalive, parse_message
from sipphones.sip.transaction import top_via_branch

from sipphones._mypyc import mypyc_attr

from .errors import (
    ConnectionLost, ConnectionRefused, ConnectTimeout, NetworkError, ProtocolError, TransportError,
)
from .tls import TlsOptions, classify_tls_error, client_context, verify_name

__all__ = ["Flow", "UdpFlow", "StreamFlow", "TransportManager", "ResponseHandler", "FlowListener",
           "MalformedListener", "TransportStats"]

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


# Datagrams read per readiness callback: what a busy registrar's socket queued up is read in one
# go instead of one event-loop iteration (and one epoll_wait) per datagram; bounded for fairness.
_READ_BATCH = 64
_MAX_DATAGRAM = 65536


@mypyc_attr(allow_interpreted_subclasses=True)   # subclassed by bench/sip_micro.py
class UdpFlow(Flow):
    """A UDP socket connected to the target (so ICMP errors reach us).

    The socket is driven with ``add_reader``/``add_writer`` directly rather than through an
    asyncio datagram transport: it reads up to ``_READ_BATCH`` datagrams per wake-up and sends
    without the transport's per-datagram bookkeeping. Writes that would block are queued and
    flushed when the socket is writable again; socket errors (ICMP port unreachable arrives as
    ``ECONNREFUSED`` on a connected socket) go to the flow's listeners, as before.

    Datagrams sent while the manager handles a batch of received ones (the next REGISTER after
    a 401, the next phone's first REGISTER after a 200) are held and sent together when the batch
    ends (``TransportManager.coalesce_udp``): one datagram at a time, spread over the batch, woke
    the registrar's receiving process for nearly every datagram; a burst is read in one wake-up.
    Against kamailio on two CPUs this took its context switches per phone (registered, then
    un-registered) from ~1.9 to ~0.14 and its CPU per registration down by about 30 %
    (bench/SIP.md). The wait is the time the batch takes (at most ``_READ_BATCH`` datagrams); a
    send outside a batch (a timer's) goes at once.
    """

    def __init__(self, manager: "TransportManager", target: Target, key: tuple):
        super().__init__(manager, target, key)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: deque[bytes] = deque()   # would have blocked: waiting for writability
        self._held: list[bytes] = []            # sent during a received batch (see the class text)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.target.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if self.manager.udp_rcvbuf:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.manager.udp_rcvbuf)
                except OSError:
                    pass
            sock.bind((self.manager.local_host(family), 0))
            sock.connect((self.target.host, self.target.port))
            self.local_host, self.local_port = sock.getsockname()[:2]
        except OSError as e:
            sock.close()
            raise NetworkError(self.target, f"cannot open a UDP socket: {e.strerror or e}") from None
        self._sock, self._loop = sock, loop
        loop.add_reader(sock.fileno(), self._read_ready)

    def send(self, data: bytes) -> None:
        sock = self._sock
        if self.closed or sock is None:
            raise self.error or ConnectionLost(self.target, "the UDP socket is closed")
        held = self._held
        if held:                               # behind what is held (sent when the batch ends)
            held.append(data)
            return
        if self.manager._batching:
            self.manager._held_flows.append(self)
            held.append(data)
            return
        self._send_now(sock, data)

    def _send_now(self, sock: socket.socket, data: bytes) -> None:
        if self._pending:                      # keep the order behind what is already queued
            self._pending.append(data)
            return
        try:
            sock.send(data)
        except (BlockingIOError, InterruptedError):
            self._pending.append(data)
            self._loop.add_writer(sock.fileno(), self._write_ready)  # type: ignore[union-attr]
        except OSError as e:
            self._on_socket_error(e)

    def _write_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while self._pending:
            try:
                sock.send(self._pending[0])
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._pending.popleft()        # that datagram is lost; tell the users
                self._on_socket_error(e)
                if self._sock is None:
                    return
                continue
            self._pending.popleft()
        # remove_*'s result through Any: typeshed says bool, uvloop returns None, and compiled
        # code would check the (unused) result against the annotation.
        cast(Any, self._loop).remove_writer(sock.fileno())

    def _send_held(self) -> None:
        """Send what was held during a batch, in order (nothing if the flow closed meanwhile:
        those datagrams are lost, as on the network; retransmission timers cover them)."""
        held = self._held
        i = 0
        while i < len(held):   # what a listener sends meanwhile is appended, so order holds
            sock = self._sock
            if self.closed or sock is None:
                break
            data = held[i]
            i += 1
            self._send_now(sock, data)
        self._held = []

    def _read_ready(self) -> None:
        manager = self.manager
        if not manager.coalesce_udp or manager._batching:
            self._read_batch()
            return
        manager._batching = True
        try:
            self._read_batch()
        finally:
            manager._batching = False
            manager._send_held()

    def _read_batch(self) -> None:
        sock = self._sock
        for _ in range(_READ_BATCH):
            if sock is None or self.closed:
                return
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self._on_socket_error(e)
                return
            self._on_datagram(data)

    def _on_datagram(self, data: bytes) -> None:
        stats = self.manager.stats
        stats.datagrams_in += 1
        if is_keepalive(data):
            return
        try:
            message = parse_message(data, self.manager.limits)
        except ParseError as e:
            self._malformed(e)
            return
        self.manager._dispatch(self, message)

    def _on_socket_error(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            error: TransportError = ConnectionRefused(self.target, "port unreachable (ICMP)")
        else:
            error = NetworkError(self.target, f"socket error: {exc}")
        # The socket stays usable (the server may come back); only the users are told.
        self._notify(error)

    def _close_transport(self) -> None:
        sock, self._sock = self._sock, None
        self._pending.clear()
        self._held = []
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            cast(Any, self._loop).remove_reader(sock.fileno())   # see _write_ready
            cast(Any, self._loop).remove_writer(sock.fileno())
        sock.close()


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


@mypyc_attr(allow_interpreted_subclasses=True)   # subclassed by bench/sip_micro.py
@dataclass
class TransportManager:
    """Owns every flow of a process and routes what arrives on them. One per event loop.

    ``tls``: verification options for TLS flows. ``limits``: parser size limits.
    ``keepalive_interval`` / ``keepalive_timeout``: RFC 5626 CRLF keep-alive on stream flows
    (``None`` disables). ``idle_close``: seconds an unused flow stays open for reuse.
    ``bind_host`` / ``bind_host6``: local addresses to send from (default: any).
    ``coalesce_udp``: hold UDP datagrams sent while a batch of received ones is handled and send
    them when it ends (see ``UdpFlow``); False sends each at once.
    """

    tls: TlsOptions = field(default_factory=TlsOptions)
    limits: Limits = DEFAULT_LIMITS
    keepalive_interval: float | None = 90.0
    keepalive_timeout: float = 10.0
    idle_close: float = 30.0
    udp_rcvbuf: int = 4 * 1024 * 1024
    bind_host: str = "0.0.0.0"
    bind_host6: str = "::"
    stats: TransportStats = field(default_factory=TransportStats)
    coalesce_udp: bool = True

    def __post_init__(self) -> None:
        self._flows: dict[tuple, Flow] = {}
        self._opening: dict[tuple, asyncio.Future] = {}
        self._expected: dict[str, ResponseHandler] = {}
        self._closed = False
        self._batching = False                  # a UDP flow is handling received datagrams
        self._held_flows: list[UdpFlow] = []    # flows holding datagrams until the batch ends

    def _send_held(self) -> None:
        flows, self._held_flows = self._held_flows, []
        for flow in flows:
            flow._send_held()

    def local_host(self, family: int) -> str:
        return self.bind_host6 if family == socket.AF_INET6 else self.bind_host

    @staticmethod
    def flow_key(target: Target, tls: TlsOptions) -> tuple:
        if target.transport is TargetTransport.TLS:
            return (target.transport, target.host, target.port, verify_name(target), tls)
        return (target.transport, target.host, target.port)

    # --- flows ---------------------------------------------------------------------------------

    async def acquire(self, target: Target, *, connect_timeout: float = 10.0) -> Flow:
        """A flow to ``target``, reusing an open one; count the caller as a user until
        :meth:`release`. Raises a ``TransportError`` subclass when the target cannot be reached."""
        if self._closed:
            raise NetworkError(target, "the transport manager is closed")
        key = self.flow_key(target, self.tls)
        flow = self._flows.get(key)
        if flow is None or flow.closed:
            pending = self._opening.get(key)
            if pending is None:
                pending = asyncio.ensure_future(self._open(target, key, connect_timeout))
                self._opening[key] = pending
                pending.add_done_callback(partial(self._opened, key))
            flow = await asyncio.shield(pending)
        flow.users += 1  # type: ignore[union-attr]
        if flow._idle_handle is not None:  # type: ignore[union-attr]
            flow._idle_handle.cancel()  # type: ignore[union-attr]
            flow._idle_handle = None  # type: ignore[union-attr]
        return flow  # type: ignore[return-value]

    def acquire_open(self, target: Target) -> Flow | None:
        """:meth:`acquire` without waiting: the open flow to ``target`` counted as a user, or
        ``None`` when there is none (then ``acquire`` opens one)."""
        if self._closed:
            return None
        flow = self._flows.get(self.flow_key(target, self.tls))
        if flow is None or flow.closed:
            return None
        flow.users += 1
        if flow._idle_handle is not None:
            flow._idle_handle.cancel()
            flow._idle_handle = None
        return flow

    def release(self, flow: Flow) -> None:
        flow.users = max(0, flow.users - 1)
        if flow.users == 0 and not flow.closed and flow._idle_handle is None:
            loop = asyncio.get_running_loop()
            flow._idle_handle = loop.call_later(self.idle_close, self._close_if_idle, flow)

    def _close_if_idle(self, flow: Flow) -> None:
        flow._idle_handle = None
        if flow.users == 0:
            flow.close()

    async def _open(self, target: Target, key: tuple, timeout: float) -> Flow:
        flow: Flow
        if target.transport is TargetTransport.UDP:
            flow = UdpFlow(self, target, key)
            await flow.open()
        else:
            flow = StreamFlow(self, target, key)
            await flow.open(timeout)
        self._flows[key] = flow
        self.stats.flows_opened += 1
        # If every caller gave up while this was opening, nobody will release it: start the idle
        # clock now; acquire() stops it when it counts its user.
        flow._idle_handle = asyncio.get_running_loop().call_later(self.idle_close, self._close_if_idle, flow)
        return flow

    def _opened(self, key: tuple, fut: asyncio.Future) -> None:
        self._opening.pop(key, None)
        if not fut.cancelled():
            fut.exception()  # consumed; every waiter got it through shield()

    def _forget_flow(self, flow: Flow) -> None:
        if self._flows.get(flow.key) is flow:
            del self._flows[flow.key]

    def flows(self) -> list[Flow]:
        return list(self._flows.values())

    # --- routing -------------------------------------------------------------------------------

    def expect(self, branch: str, handler: ResponseHandler) -> None:
        """Route responses whose top Via carries ``branch`` to ``handler`` until :meth:`forget`."""
        self._expected[branch] = handler

    def forget(self, branch: str) -> None:
        self._expected.pop(branch, None)

    def _dispatch(self, flow: Flow, message: Request | Response) -> None:
        self.stats.messages_in += 1
        if isinstance(message, Response):
            branch = _top_branch(message)
            handler = self._expected.get(branch) if branch else None
            if handler is None:
                self.stats.unmatched_responses += 1
                return
            try:
                handler(message, flow)
            except Exception:
                log.exception("response handler failed")
            return
        self._answer_request(flow, message)

    def _answer_request(self, flow: Flow, request: Request) -> None:
        """A REGISTER-only UA: OPTIONS gets 200 (registrars probe with it), the rest 405."""
        if request.method == "ACK":
            return
        ok = request.method == "OPTIONS"
        headers = Headers()
        for value in request.headers.get_all("Via"):
            headers.add("Via", value)
        headers.add("From", request.headers.get("From") or "")
        to = request.headers.get("To") or ""
        if ";tag=" not in to.replace(" ", "").lower():
            to = f"{to};tag={os.urandom(6).hex()}"
        headers.add("To", to)
        headers.add("Call-ID", request.headers.get("Call-ID") or "")
        headers.add("CSeq", request.headers.get("CSeq") or "")
        headers.add("Allow", "OPTIONS")
        response = Response(200 if ok else 405, "OK" if ok else "Method Not Allowed", headers)
        try:
            flow.send(response.to_bytes())
            self.stats.requests_answered += 1
        except TransportError:
            pass

    async def close(self) -> None:
        """Close every flow (no listener is told) and refuse new ones."""
        self._closed = True
        for fut in list(self._opening.values()):
            fut.cancel()
        for flow in list(self._flows.values()):
            flow.close()
        self._expected.clear()
        await asyncio.sleep(0)  # let transports run their close callbacks


def _top_branch(response: Response) -> str | None:
    return top_via_branch(response.headers)
