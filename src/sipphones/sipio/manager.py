"""The flows of a process: one per target, shared, opened once, closed when idle; and the routing
of what arrives on them (responses by top-Via branch, requests answered on the spot).

See ``sipphones.sipio.transport`` for the whole picture; the flows themselves are in ``udp.py``
and ``stream.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from functools import partial

from sipphones.sip.config import Target, TargetTransport
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.parser import DEFAULT_LIMITS, Limits
from sipphones.sip.transaction import top_via_branch

from sipphones._mypyc import mypyc_attr

from .errors import NetworkError, TransportError
from .stream import StreamFlow
from .tls import TlsOptions, verify_name
from .transport import Flow, ResponseHandler, TransportStats
from .udp import UdpFlow

__all__ = ["TransportManager"]

log = logging.getLogger(__name__)


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
