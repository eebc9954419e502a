"""SIP over UDP: a socket connected to the target, read in batches, sends held during a batch.

See ``sipphones.sipio.transport`` for flows in general and ``UdpFlow`` below for why a connected
socket and how the sends of a received batch are coalesced (switched by
``TransportManager.coalesce_udp``).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from sipphones.sip.config import Target
from sipphones.sip.errors import ParseError
from sipphones.sip.parser import is_keepalive, parse_message

from sipphones._mypyc import mypyc_attr

from .errors import ConnectionLost, ConnectionRefused, NetworkError, TransportError
from .transport import Flow

if TYPE_CHECKING:
    from .manager import TransportManager

__all__ = ["UdpFlow"]

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
