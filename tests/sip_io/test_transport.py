"""UDP, TCP and TLS flows against real peers: routing by branch, ICMP, reuse, TLS checks,
CRLF keep-alives, and malformed input from the peer."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from sipphones.sip.config import Target, TargetTransport
from sipphones.sip.errors import HeaderTooLong, ParseError
from sipphones.sip.message import Headers, Request, Response
from sipphones.sipio.errors import ConnectionLost, ConnectionRefused, ProtocolError, TlsError, TransportError
from sipphones.sipio.tls import TlsOptions
from sipphones.sipio.manager import TransportManager
from tests.peers.fixtures import SIP_DOMAIN, free_port

pytestmark = pytest.mark.peers

UDP, TCP, TLS = TargetTransport.UDP, TargetTransport.TCP, TargetTransport.TLS


def request(method: str, flow, *, branch: str | None = None, uri: str = f"sip:{SIP_DOMAIN}") -> tuple[Request, str]:
    branch = branch or "z9hG4bK" + os.urandom(8).hex()
    h = Headers()
    h.add("Via", f"SIP/2.0/{flow.transport.value} {flow.local_host}:{flow.local_port};rport;branch={branch}")
    h.add("Max-Forwards", "70")
    h.add("From", f"<sip:alice@{SIP_DOMAIN}>;tag={os.urandom(4).hex()}")
    h.add("To", f"<sip:alice@{SIP_DOMAIN}>")
    h.add("Call-ID", os.urandom(8).hex())
    h.add("CSeq", f"1 {method}")
    if method == "REGISTER":
        h.add("Contact", f"<sip:alice@{flow.local_host}:{flow.local_port}>")
        h.add("Expires", "60")
    return Request(method, uri, h), branch


class Inbox:
    """Collects responses and flow errors; await ``next_response`` / ``next_error``."""

    def __init__(self):
        self.responses: asyncio.Queue = asyncio.Queue()
        self.errors: asyncio.Queue = asyncio.Queue()
        self.malformed: list[ParseError] = []

    def on_response(self, response: Response, flow) -> None:
        self.responses.put_nowait(response)

    def on_error(self, flow, error: TransportError) -> None:
        self.errors.put_nowait(error)

    def on_malformed(self, flow, error: ParseError) -> None:
        self.malformed.append(error)

    def watch(self, flow) -> None:
        flow.add_listener(self.on_error)
        flow.add_malformed_listener(self.on_malformed)

    async def next_response(self, timeout: float = 3.0) -> Response:
        return await asyncio.wait_for(self.responses.get(), timeout)

    async def next_error(self, timeout: float = 3.0) -> TransportError:
        return await asyncio.wait_for(self.errors.get(), timeout)


@pytest.fixture
async def manager():
    m = TransportManager(idle_close=0.2, keepalive_interval=None)
    yield m
    await m.close()


async def roundtrip(manager: TransportManager, flow, method: str = "OPTIONS") -> Response:
    inbox = Inbox()
    req, branch = request(method, flow)
    manager.expect(branch, inbox.on_response)
    flow.send(req.to_bytes())
    try:
        return await inbox.next_response()
    finally:
        manager.forget(branch)


async def test_udp_response_is_routed_to_its_branch(manager, kamailio):
    flow = await manager.acquire(Target(kamailio.address, kamailio.udp_port, UDP))
    assert flow.local_host == "127.0.0.1" and flow.local_port > 0
    response = await roundtrip(manager, flow)
    assert response.status == 200
    assert f"rport={flow.local_port}" in response.headers.values("Via")[0]  # RFC 3581 filled in


async def test_udp_response_without_a_waiting_transaction_is_dropped(manager, kamailio):
    flow = await manager.acquire(Target(kamailio.address, kamailio.udp_port, UDP))
    req, _ = request("OPTIONS", flow)  # nobody expects this branch
    flow.send(req.to_bytes())
    deadline = time.monotonic() + 3
    while manager.stats.unmatched_responses == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert manager.stats.unmatched_responses == 1


async def test_udp_port_unreachable_is_reported_at_once(manager):
    port = free_port("127.0.0.5")
    flow = await manager.acquire(Target("127.0.0.5", port, UDP))
    inbox = Inbox()
    inbox.watch(flow)
    req, _ = request("REGISTER", flow)
    started = time.monotonic()
    flow.send(req.to_bytes())
    error = await inbox.next_error(timeout=2.0)
    assert isinstance(error, ConnectionRefused) and error.kind == "connection_refused"
    assert time.monotonic() - started < 0.5
    assert not flow.closed  # the socket stays usable: the server may come back


async def test_flows_are_shared_per_target_and_closed_when_idle(manager, kamailio):
    target = Target(kamailio.address, kamailio.udp_port, UDP)
    a, b = await asyncio.gather(manager.acquire(target), manager.acquire(target))
    assert a is b and a.users == 2
    other = await manager.acquire(Target(kamailio.address, kamailio.tcp_port, TCP))
    assert other is not a
    manager.release(a)
    await asyncio.sleep(0.3)
    assert not a.closed  # one user left
    manager.release(b)
    await asyncio.sleep(0.4)
    assert a.closed and a not in manager.flows()
    again = await manager.acquire(target)
    assert again is not a and not again.closed


async def test_tcp_request_and_connection_reuse(manager, kamailio):
    target = Target(kamailio.address, kamailio.tcp_port, TCP)
    flow = await manager.acquire(target)
    assert (await roundtrip(manager, flow)).status == 200
    same = await manager.acquire(target)
    assert same is flow
    assert (await roundtrip(manager, same)).status == 200
    assert manager.stats.flows_opened == 1


async def test_tcp_connection_refused_is_typed(manager):
    port = free_port("127.0.0.5")
    started = time.monotonic()
    with pytest.raises(ConnectionRefused):
        await manager.acquire(Target("127.0.0.5", port, TCP), connect_timeout=5)
    assert time.monotonic() - started < 1.0


async def test_tls_with_the_test_ca_verifies_ip_and_name(kamailio, sip_pki):
    manager = TransportManager(tls=TlsOptions(ca_file=str(sip_pki.ca_file)), keepalive_interval=None)
    try:
        flow = await manager.acquire(Target(kamailio.address, kamailio.tls_port, TLS))
        assert (await roundtrip(manager, flow)).status == 200
        named = await manager.acquire(Target(kamailio.address, kamailio.tls_port, TLS, SIP_DOMAIN))
        assert named is not flow  # another verified name is another flow
        assert (await roundtrip(manager, named)).status == 200
    finally:
        await manager.close()


async def test_tls_without_trust_in_the_ca_fails(kamailio):
    manager = TransportManager(keepalive_interval=None)  # system CA store only
    try:
        with pytest.raises(TlsError) as e:
            await manager.acquire(Target(kamailio.address, kamailio.tls_port, TLS))
        assert e.value.kind == "tls_error"
        assert "certificate" in str(e.value)
    finally:
        await manager.close()


async def test_tls_certificate_for_another_name_fails(kamailio, sip_pki):
    manager = TransportManager(tls=TlsOptions(ca_file=str(sip_pki.ca_file)), keepalive_interval=None)
    try:
        with pytest.raises(TlsError) as e:
            await manager.acquire(Target(kamailio.address, kamailio.tls_port, TLS, "other.test"))
        assert "mismatch" in (e.value.reason or "").lower()
    finally:
        await manager.close()


async def test_tls_verification_can_be_turned_off_explicitly(kamailio):
    manager = TransportManager(tls=TlsOptions(verify=False), keepalive_interval=None)
    try:
        flow = await manager.acquire(Target(kamailio.address, kamailio.tls_port, TLS, "other.test"))
        assert (await roundtrip(manager, flow)).status == 200
    finally:
        await manager.close()


async def test_crlf_keepalive_keeps_a_live_connection(kamailio):
    manager = TransportManager(keepalive_interval=0.2, keepalive_timeout=0.5)
    try:
        flow = await manager.acquire(Target(kamailio.address, kamailio.tcp_port, TCP))
        inbox = Inbox()
        inbox.watch(flow)
        await asyncio.sleep(1.3)
        assert manager.stats.keepalive_pings >= 3
        assert not flow.closed and inbox.errors.empty()
        assert (await roundtrip(manager, flow)).status == 200
    finally:
        await manager.close()


async def test_missing_keepalive_pong_declares_the_connection_dead(sipp_factory):
    silent = sipp_factory("blackhole", address="127.0.0.2", transport="TCP")
    manager = TransportManager(keepalive_interval=0.2, keepalive_timeout=0.3)
    try:
        flow = await manager.acquire(Target(silent.address, silent.port, TCP))
        inbox = Inbox()
        inbox.watch(flow)
        error = await inbox.next_error(timeout=3.0)
        assert isinstance(error, ConnectionLost) and "pong" in str(error)
        assert flow.closed
    finally:
        await manager.close()


async def test_garbage_on_a_stream_closes_it_with_a_protocol_error(manager, sipp_factory):
    peer = sipp_factory("garbage", address="127.0.0.2", transport="TCP")
    flow = await manager.acquire(Target(peer.address, peer.port, TCP))
    inbox = Inbox()
    inbox.watch(flow)
    req, branch = request("REGISTER", flow)
    manager.expect(branch, inbox.on_response)
    flow.send(req.to_bytes())
    error = await inbox.next_error()
    assert isinstance(error, ProtocolError) and error.kind == "protocol_error"
    assert flow.closed and inbox.responses.empty()
    with pytest.raises(TransportError):
        flow.send(b"x")


async def test_oversized_udp_reply_is_dropped_as_malformed(manager, sipp_factory):
    peer = sipp_factory("oversized", address="127.0.0.2")
    flow = await manager.acquire(Target(peer.address, peer.port, UDP))
    inbox = Inbox()
    inbox.watch(flow)
    req, branch = request("REGISTER", flow)
    manager.expect(branch, inbox.on_response)
    flow.send(req.to_bytes())
    deadline = time.monotonic() + 3
    while not inbox.malformed and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert inbox.malformed and isinstance(inbox.malformed[0], HeaderTooLong)
    assert inbox.responses.empty() and not flow.closed


async def test_oversized_stream_reply_closes_the_connection(manager, sipp_factory):
    peer = sipp_factory("oversized", address="127.0.0.2", transport="TCP")
    flow = await manager.acquire(Target(peer.address, peer.port, TCP))
    inbox = Inbox()
    inbox.watch(flow)
    req, _ = request("REGISTER", flow)
    flow.send(req.to_bytes())
    error = await inbox.next_error()
    assert isinstance(error, ProtocolError) and "too long" in str(error).lower()
