"""The server's HTTP protocol (sipphones.api.http_protocol): what is written in one loop iteration
leaves in one send, in order, and HTTP/1.1 behaves as before (pipelining, 100-continue, HEAD,
Connection: close, long bodies). The transport tests run over a real socket pair; the HTTP tests
talk to the real ``sipphones serve`` of tests/conftest.py (every other API test does too)."""

from __future__ import annotations

import asyncio
import re
import socket

from sipphones.api.http_protocol import PROTOCOL, OneSendTransport
from sipphones.cli import serve
from tests.servers import get_token


class Sends:
    """A real transport, with its writes counted."""

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name):
        return getattr(self.transport, name)


def _over_socketpair(body):
    """Run ``body(one_send, sends, peer)`` with a OneSendTransport over one end of a socket pair."""

    async def go():
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        sends = Sends(transport)
        try:
            return await body(OneSendTransport(sends, loop), sends, peer)
        finally:
            transport.abort()
            peer.close()

    return asyncio.run(go())


async def _read(peer: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = b""
    while len(out) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(peer, 65536), 5)
        if not chunk:
            break
        out += chunk
    return out


def test_what_one_iteration_writes_leaves_in_one_send_in_order():
    async def body(t, sends, peer):
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        t.write(b"hello")
        t.writelines([b"HTTP/1.1 204 No Content\r\n\r\n"])
        assert sends.writes == []                       # held until the iteration ends
        assert t.get_write_buffer_size() == 38 + 5 + 27
        received = await _read(peer, 70)
        return sends.writes, received

    writes, received = _over_socketpair(body)
    expected = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n"
    assert writes == [expected] and received == expected


def test_writes_of_different_iterations_are_not_held_longer():
    async def body(t, sends, peer):
        t.write(b"first")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        after_one = list(sends.writes)
        t.write(b"second")
        received = await _read(peer, 11)
        return after_one, sends.writes, received

    after_one, writes, received = _over_socketpair(body)
    assert after_one == [b"first"] and writes == [b"first", b"second"] and received == b"firstsecond"


def test_close_sends_what_is_held_first_and_abort_drops_it():
    async def close_body(t, sends, peer):
        t.write(b"last words")
        t.close()
        received = await _read(peer, 100)              # the bytes, then end of stream
        return received, t.is_closing()

    received, closing = _over_socketpair(close_body)
    assert received == b"last words" and closing

    async def abort_body(t, sends, peer):
        t.write(b"never sent")
        t.abort()
        await asyncio.sleep(0.01)
        return sends.writes

    assert _over_socketpair(abort_body) == []


def test_nothing_is_written_to_a_transport_closed_meanwhile():
    async def body(t, sends, peer):
        t.write(b"late")
        sends.transport.close()                         # closed underneath (the peer went away)
        await asyncio.sleep(0.01)
        return sends.writes

    assert _over_socketpair(body) == []


def test_serve_runs_the_one_send_protocol():
    assert serve._http_protocol() == PROTOCOL


# --- HTTP/1.1 through the real server ---------------------------------------------------------

def _exchange(server, raw: bytes, *, until_closed: bool = False, expect_responses: int = 1,
              send_after_continue: bytes | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(raw)
        out = b""
        if send_after_continue is not None:
            while b"\r\n\r\n" not in out:
                out += s.recv(65536)
            assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), out
            s.sendall(send_after_continue)
        while True:
            if not until_closed and _complete_responses(out) >= expect_responses:
                return out
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def _complete_responses(data: bytes) -> int:
    n, pos = 0, 0
    while True:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        head = data[pos:end].decode("latin-1")
        if head.startswith("HTTP/1.1 100 "):
            pos = end + 4
            continue
        m = re.search(r"(?im)^content-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        if len(data) < end + 4 + length:
            return n
        n, pos = n + 1, end + 4 + length


def test_pipelined_requests_are_answered_in_order(server):
    raw = (b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /v2/sip_phones HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    out = _exchange(server, raw, expect_responses=3)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    assert statuses == [b"200", b"401", b"200"]          # no token: Zoom's 401 in the middle


def test_expect_100_continue_gets_its_interim_answer_before_the_body_is_sent(server, http, creds):
    body = b'{"user_email": "x@example.com"}'
    head = (b"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
            % (get_token(http, creds).encode(), len(body)))
    out = _exchange(server, head, send_after_continue=body)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", out) == [b"100", b"400"]   # the body was read: a validation error
    # Refused before its body is read (no token): the answer comes at once, without the 100.
    out = _exchange(server, head.replace(b"Authorization: Bearer", b"X-Not-Auth:"))
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", out) == [b"401"]


def test_connection_close_answers_then_closes(server):
    out = _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", until_closed=True)
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"}") and b"connection: close" in out.lower()


def test_head_answers_headers_only(server):
    out = _exchange(server, b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", until_closed=True)
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\n")


def test_a_long_streamed_body_arrives_whole(server, http):
    page = http.get("/docs")
    script = re.search(r'src="(/docs/static/[^"]+\.js)"', page.text).group(1)
    out = _exchange(server, f"GET {script} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode(),
                    until_closed=True)
    head, _, body = out.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
    assert out.startswith(b"HTTP/1.1 200 ") and length > 100_000 and len(body) == length


def test_serve_http_option_selects_uvicorns_protocols_too(tmp_path):
    import subprocess
    import sys

    from tests.servers import start_sqlite_server

    assert [serve._http_protocol(c) for c in ("httptools", "h11", "auto")] == ["httptools", "h11", "auto"]
    stock = start_sqlite_server(tmp_path / "stock", extra_args=["--http", "h11"])
    try:
        with stock.client() as c:
            assert c.get("/healthz").status_code == 200
            assert c.get("/v2/sip_phones").json()["code"] == 124   # the same service, another protocol
    finally:
        stock.stop()
    bad = subprocess.run([sys.executable, "-m", "sipphones", "serve", "--http", "nginx",
                          "--data-dir", str(tmp_path / "bad")], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--http must be one of one-send, httptools, h11, auto" in bad.stderr
    assert "Traceback" not in bad.stderr
