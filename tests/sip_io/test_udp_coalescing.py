"""UDP datagrams sent while a batch of received ones is handled leave when the batch ends.

The peer is a plain UDP socket of the test: it sends several responses at once (so the flow
reads them in one batch), and the handlers answer each with a datagram. Those answers must not
leave while the batch is still being handled, must leave in order right after it, and a send
outside a batch must leave at once; with ``coalesce_udp=False`` every send leaves at once.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket

import pytest

from sipphones.sip.config import Target, TargetTransport
from sipphones.sipio.errors import ConnectionRefused, TransportError
from sipphones.sipio.manager import TransportManager


def response(branch: str, port: int) -> bytes:
    return (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\r\n"
            f"From: <sip:a@sip.test>;tag=1\r\nTo: <sip:a@sip.test>;tag=2\r\nCall-ID: {branch}\r\n"
            f"CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n").encode()


def waiting(sock: socket.socket) -> bool:
    """A datagram is waiting on the peer's socket (loopback delivers at once)."""
    return bool(select.select([sock], [], [], 0)[0])


def drain(sock: socket.socket) -> list[bytes]:
    out = []
    while waiting(sock):
        out.append(sock.recv(65536))
    return out


@pytest.fixture
def peer():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


async def open_flow(peer: socket.socket, **options):
    manager = TransportManager(bind_host="127.0.0.1", **options)
    flow = await manager.acquire(Target("127.0.0.1", peer.getsockname()[1], TargetTransport.UDP))
    peer.connect((flow.local_host, flow.local_port))
    return manager, flow


async def handled(seen: list, count: int) -> None:
    for _ in range(200):
        if len(seen) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {len(seen)} of {count} responses handled")


async def test_answers_to_a_batch_leave_together_after_it_in_order(peer):
    manager, flow = await open_flow(peer)
    try:
        seen = []   # (branch, a datagram had already left when this response was handled)

        def answer(resp, f):
            branch = resp.headers.get("Call-ID")
            seen.append((branch, waiting(peer)))
            f.send(f"answer {branch}".encode())

        branches = [f"z9hG4bK{os.urandom(4).hex()}" for _ in range(3)]
        for b in branches:
            manager.expect(b, answer)
        for b in branches:                      # queued before the loop reads: one batch
            peer.send(response(b, flow.local_port))
        await handled(seen, 3)
        assert [b for b, _ in seen] == branches
        assert not any(left for _, left in seen)    # nothing left during the batch
        assert drain(peer) == [f"answer {b}".encode() for b in branches]

        flow.send(b"outside a batch")           # e.g. a timer's retransmission
        assert drain(peer) == [b"outside a batch"]
    finally:
        await manager.close()


async def test_without_coalescing_each_answer_leaves_at_once(peer):
    manager, flow = await open_flow(peer, coalesce_udp=False)
    try:
        seen = []

        def answer(resp, f):
            seen.append(waiting(peer))
            f.send(b"answer")

        branches = [f"z9hG4bK{os.urandom(4).hex()}" for _ in range(3)]
        for b in branches:
            manager.expect(b, answer)
        for b in branches:
            peer.send(response(b, flow.local_port))
        await handled(seen, 3)
        assert seen == [False, True, True]     # the previous answer had left already
        assert drain(peer) == [b"answer"] * 3
    finally:
        await manager.close()


async def test_held_datagrams_of_a_flow_closed_during_the_batch_are_dropped(peer):
    manager, flow = await open_flow(peer)
    try:
        seen = []

        def answer_then_close(resp, f):
            seen.append(resp)
            f.send(b"held")
            f.close()

        branch = f"z9hG4bK{os.urandom(4).hex()}"
        manager.expect(branch, answer_then_close)
        peer.send(response(branch, flow.local_port))
        await handled(seen, 1)
        await asyncio.sleep(0.01)
        assert drain(peer) == []
        assert flow.closed and not flow._held
        with pytest.raises(TransportError):     # a closed flow still refuses at once
            flow.send(b"late")
    finally:
        await manager.close()


async def test_a_send_error_at_the_end_of_a_batch_reaches_the_listeners():
    # The "peer" sends one response and closes: the held answer meets ICMP port unreachable.
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    manager, flow = await open_flow(peer)
    errors: list[TransportError] = []
    flow.add_listener(lambda f, e: errors.append(e))
    try:
        seen = []

        def answer(resp, f):
            seen.append(resp)
            peer.close()                        # gone before the held answer leaves
            f.send(b"answer")
            f.send(b"second answer")

        branch = f"z9hG4bK{os.urandom(4).hex()}"
        manager.expect(branch, answer)
        peer.send(response(branch, flow.local_port))
        await handled(seen, 1)
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.005)
        assert errors and isinstance(errors[0], ConnectionRefused)
        assert not flow.closed                  # the socket stays usable (the server may return)
    finally:
        await manager.close()
