"""The SIP client against a hostile registrar: every behaviour of a table ends in time, typed,
and with a bounded number of REGISTERs (issue 10's fuzz target for the SIP side).

The peer is a scripted registrar (a UDP and a TCP server on 127.0.0.2, in a thread with its own
event loop so that it counts and answers whatever the client under test does): no real
registrar misbehaves on purpose, so this is the one place a scripted peer is right. Each
behaviour is a function from the n-th REGISTER it receives to what it sends back.

``check`` (the engine's one-shot) runs against each behaviour over UDP and TCP with a short
server budget: it must return within its deadline (the budget, twice when a registration had to
be taken back) plus a margin for a loaded machine, give a typed result, and the peer must have
seen a bounded number of REGISTERs. The monitor runs against the re-challenge loop and the
absurd ``Retry-After``: the phone is reported failed with the reason, the REGISTER rate stays
bounded, and the cap is logged.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest

from sipphones.check.models import CheckResult
from sipphones.check.service import CheckOptions, check_phone
from sipphones.phones.models import Transport
from tests.monitor.running import start_monitor, wait_for
from tests.monitor.store import Server
from tests.peers.procs import free_port

from .helpers import phone

pytestmark = pytest.mark.peers

HOST = "127.0.0.2"
BUDGET = 0.6          # --timeout of the check: seconds per server
MARGIN = 1.5          # scheduling on a busy 2-core machine, process start excluded
MAX_TRANSACTIONS = 8  # distinct CSeqs the peer may see in one check (register + un-register)
MAX_MESSAGES = 40     # REGISTER messages, UDP retransmissions included

# --- the peer ------------------------------------------------------------------------------------


@dataclass
class Request:
    text: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return ""

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def cseq(self) -> int:
        try:
            return int(self.get("CSeq").split()[0])
        except (ValueError, IndexError):
            return -1

    @property
    def authorized(self) -> bool:
        return bool(self.get("Authorization") or self.get("Proxy-Authorization"))


def parse_request(data: bytes) -> Request | None:
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    lines = head.split("\r\n")
    if not lines or not lines[0].startswith("REGISTER "):
        return None
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return Request(head, headers)


def response(req: Request, status: int, reason: str, extra: list[tuple[str, str]] = (), *, body: bytes = b"",
             call_id: str | None = None, cseq: str | None = None, branch_suffix: str = "",
             contact: bool = True, content_length: int | None = None) -> bytes:
    lines = [f"SIP/2.0 {status} {reason}"]
    for i, via in enumerate(req.all("Via")):
        if i == 0 and branch_suffix:
            via = via.replace("branch=", "branch=" + branch_suffix, 1)
        lines.append(f"Via: {via};received={HOST}")
    lines += [f"From: {req.get('From')}", f"To: {req.get('To')};tag=hostile",
              f"Call-ID: {call_id if call_id is not None else req.get('Call-ID')}",
              f"CSeq: {cseq if cseq is not None else req.get('CSeq')}"]
    if contact and status == 200:
        for c in req.all("Contact"):
            if "expires=0" not in c:
                lines.append(f"Contact: {c}")
    lines += [f"{k}: {v}" for k, v in extra]
    lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def ok(req: Request, extra=(), **kw) -> bytes:
    return response(req, 200, "OK", extra, **kw)


def challenge(req: Request, *, realm: str = "hostile", nonce: str = "n", proxy: bool = False, stale: bool = False,
              params: str | None = None) -> bytes:
    value = params if params is not None else f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
    if stale:
        value += ", stale=true"
    if proxy:
        return response(req, 407, "Proxy Authentication Required", [("Proxy-Authenticate", value)])
    return response(req, 401, "Unauthorized", [("WWW-Authenticate", value)])


def auth_then(req: Request, then: Callable[[Request], bytes], **kw) -> bytes:
    """Challenge an unauthenticated REGISTER, answer ``then`` to an authenticated one."""
    return then(req) if req.authorized else challenge(req, **kw)


# What the peer does with the n-th REGISTER (from 0): bytes to send (b"" sends nothing), or a
# list of chunks, or CLOSE (TCP: close the connection).
CLOSE = object()
Behaviour = Callable[[Request, int], "bytes | list[bytes] | object"]


@dataclass
class HostileRegistrar:
    behaviour: Behaviour
    host: str = HOST
    udp_port: int = 0
    tcp_port: int = 0
    received: list[tuple[float, Request]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: asyncio.Event | None = None

    def start(self) -> "HostileRegistrar":
        self.udp_port = self.tcp_port = free_port(self.host)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self._ready.wait(10), "the hostile registrar did not start"
        return self

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        if self.thread is not None:
            self.thread.join(10)

    def server(self, transport: str) -> str:
        return f"{self.host}:{self.udp_port if transport == 'UDP' else self.tcp_port}"

    @property
    def registers(self) -> int:
        return len(self.received)

    @property
    def transactions(self) -> int:
        return len({r.cseq for _, r in self.received})

    def answer(self, data: bytes) -> tuple[Request | None, object]:
        req = parse_request(data)
        if req is None:
            return None, b""
        n = len(self.received)
        self.received.append((time.monotonic(), req))
        return req, self.behaviour(req, n)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        peer = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                _, out = peer.answer(data)
                for chunk in _chunks(out):
                    self.transport.sendto(chunk, addr)

        udp, _ = await self.loop.create_datagram_endpoint(Udp, local_addr=(self.host, self.udp_port))
        tasks: set[asyncio.Task] = set()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                buffer = b""
                while True:
                    data = await reader.read(65536)
                    if not data:
                        return
                    buffer += data
                    while b"\r\n\r\n" in buffer:   # our client sends REGISTERs without a body
                        message, buffer = buffer.split(b"\r\n\r\n", 1)
                        if message.strip() == b"":
                            continue                # a keep-alive CRLF
                        _, out = peer.answer(message + b"\r\n\r\n")
                        if out is CLOSE:
                            writer.close()
                            return
                        for chunk in _chunks(out):
                            writer.write(chunk)
                        await writer.drain()
            except (ConnectionError, OSError):
                return
            finally:
                writer.close()

        def on_connect(reader, writer):
            task = asyncio.ensure_future(serve(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        tcp = await asyncio.start_server(on_connect, self.host, self.tcp_port)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            udp.close()
            tcp.close()
            for task in list(tasks):
                task.cancel()


def _chunks(out: object) -> list[bytes]:
    if out is CLOSE or out is None:
        return []
    if isinstance(out, bytes):
        return [out] if out else []
    return [c for c in out if c]  # type: ignore[union-attr]


@pytest.fixture
def hostile():
    started: list[HostileRegistrar] = []

    def make(behaviour: Behaviour) -> HostileRegistrar:
        peer = HostileRegistrar(behaviour).start()
        started.append(peer)
        return peer
    yield make
    for peer in started:
        peer.stop()


# --- the behaviours ------------------------------------------------------------------------------

def _big(n: int) -> str:
    return "x" * n


BEHAVIOURS: dict[str, Behaviour] = {
    # re-challenge loops (defect 8)
    "new_realm_every_401": lambda r, n: challenge(r, realm=f"realm{n}", nonce=f"n{n}"),
    "alternate_401_407_new_realms": lambda r, n: challenge(r, realm=f"realm{n}", nonce=f"n{n}", proxy=n % 2 == 1),
    "alternate_401_407_stale": lambda r, n: challenge(r, realm="hostile", nonce=f"n{n}", proxy=n % 2 == 1,
                                                      stale=n > 1),
    "stale_forever": lambda r, n: challenge(r, nonce=f"n{n}", stale=n > 0),
    "always_401_same_realm": lambda r, n: challenge(r, nonce=f"n{n}"),
    # bogus digest parameters
    "digest_unknown_algorithm": lambda r, n: challenge(r, params='Digest realm="h", nonce="n", algorithm=ROT13'),
    "digest_missing_nonce": lambda r, n: challenge(r, params='Digest realm="h", algorithm=MD5'),
    "digest_missing_realm": lambda r, n: challenge(r, params='Digest nonce="n"'),
    "digest_enormous_nonce": lambda r, n: auth_then(r, ok, nonce=_big(7000)),
    "digest_enormous_realm": lambda r, n: auth_then(r, ok, realm=_big(7000)),
    "digest_too_long_nonce": lambda r, n: challenge(r, nonce=_big(70000)),
    "digest_enormous_algorithm": lambda r, n: challenge(r, params=f'Digest realm="h", nonce="n", algorithm={_big(7000)}'),
    "digest_enormous_qop": lambda r, n: challenge(r, params=f'Digest realm="h", nonce="n", qop="{_big(7000)}"'),
    "digest_qop_list": lambda r, n: auth_then(r, ok, params='Digest realm="h", nonce="n", qop="auth-int,auth,x"'),
    "digest_qop_unknown": lambda r, n: challenge(r, params='Digest realm="h", nonce="n", qop="x-private"'),
    "digest_not_digest": lambda r, n: challenge(r, params='Basic realm="h"'),
    "digest_unquoted_garbage": lambda r, n: challenge(r, params='Digest ,,,===,"'),
    # garbage, truncated, oversized
    "garbage": lambda r, n: b"\x00\xff\xfeNOT SIP AT ALL\r\n\r\n",
    "truncated": lambda r, n: ok(r)[:40],
    "oversized_body": lambda r, n: ok(r, body=b"b" * 70000),
    "huge_header": lambda r, n: ok(r, [("X-Junk", _big(9000))]),
    "many_headers": lambda r, n: ok(r, [("X-Junk", str(i)) for i in range(300)]),
    "many_via": lambda r, n: ok(r, [("Via", f"SIP/2.0/UDP 10.0.0.{i % 250};branch=z9hG4bKx{i}") for i in range(150)]),
    "content_length_lies": lambda r, n: ok(r, content_length=60000),
    # wrong identifiers: strays, to be ignored
    "wrong_call_id": lambda r, n: ok(r, call_id="not-ours@hostile"),
    "wrong_cseq_method": lambda r, n: ok(r, cseq=f"{r.cseq} INVITE"),
    "wrong_cseq_number": lambda r, n: ok(r, cseq=f"{r.cseq + 1000} REGISTER"),
    "wrong_branch": lambda r, n: ok(r, branch_suffix="zz"),
    # provisional floods
    "provisional_flood": lambda r, n: [response(r, 100, "Trying")] * 200,
    "provisional_flood_then_200": lambda r, n: [response(r, 180, "Ringing")] * 200 + [ok(r)],
    # redirects, odd finals
    "redirect_302": lambda r, n: response(r, 302, "Moved", [("Contact", "<sip:elsewhere@192.0.2.1>")]),
    "redirect_to_self_loop": lambda r, n: response(r, 301, "Moved", [("Contact", f"<sip:{HOST}>")]),
    "423_absurd_min_expires": lambda r, n: response(r, 423, "Interval Too Brief",
                                                    [("Min-Expires", "99999999999999999999")]),
    "423_garbage_min_expires": lambda r, n: response(r, 423, "Interval Too Brief", [("Min-Expires", "soon")]),
    "423_then_ok": lambda r, n: (ok(r) if n else response(r, 423, "Interval Too Brief", [("Min-Expires", "3600")])),
    "200_absurd_expires": lambda r, n: ok(r, [("Expires", "99999999999999999999")], contact=False),
    "200_negative_expires": lambda r, n: ok(r, [("Expires", "-5")], contact=False),
    "200_no_contact": lambda r, n: ok(r, contact=False),
    "200_expires_zero": lambda r, n: ok(r, [("Expires", "0")], contact=False),
    "503_absurd_retry_after": lambda r, n: response(r, 503, "Service Unavailable",
                                                    [("Retry-After", "99999999999999999")]),
    "503_garbage_retry_after": lambda r, n: response(r, 503, "Service Unavailable", [("Retry-After", "later")]),
    "600_busy_everywhere": lambda r, n: response(r, 600, "Busy Everywhere"),
    "status_999": lambda r, n: response(r, 699, "Whatever"),
    "silent": lambda r, n: b"",
}

# behaviours whose bytes only make sense (or only differ) on one transport
TCP_ONLY = {"content_length_lies"}
UDP_ONLY = {"truncated"}


def _cases():
    for name in BEHAVIOURS:
        for transport in ("UDP", "TCP"):
            if (transport == "UDP" and name in TCP_ONLY) or (transport == "TCP" and name in UDP_ONLY):
                continue
            yield pytest.param(name, transport, id=f"{name}-{transport}")


@pytest.mark.parametrize("name,transport", list(_cases()))
async def test_check_against_a_hostile_registrar_ends_in_time_typed_and_bounded(hostile, name, transport):
    peer = hostile(BEHAVIOURS[name])
    options = CheckOptions(server_budget=BUDGET, t1=0.1)
    started = time.monotonic()
    report = await asyncio.wait_for(
        check_phone(phone((peer.server(transport), Transport(transport))), options), 60)
    elapsed = time.monotonic() - started
    (s,) = [x for x in report.servers if x.slot == 1]
    assert isinstance(s.result, CheckResult) and s.result is not CheckResult.NOT_TRIED, s
    # the deadline: the budget for the registration, as much again to take a binding back
    bound = BUDGET * (2 if s.result is CheckResult.REGISTERED else 1)
    assert elapsed <= bound + MARGIN, (name, elapsed, s)
    assert peer.transactions <= MAX_TRANSACTIONS, (name, peer.transactions)
    assert peer.registers <= MAX_MESSAGES, (name, peer.registers)
    assert s.detail is not None and len(s.detail) < 2000


# --- the monitor -----------------------------------------------------------------------------------

MONITOR_CASES = [
    # behaviour, the failure kind the phone must show, a word of the reason
    ("new_realm_every_401", "auth_rejected", "realm"),
    ("alternate_401_407_new_realms", "auth_rejected", "realm"),
    ("stale_forever", "auth_rejected", "stale"),
    ("503_absurd_retry_after", "server_error", "503"),
    ("200_expires_zero", "rejected", "granted no time"),
]


@pytest.fixture
def monitor_store(tmp_path):
    from tests.monitor.store import PhoneStore
    s = PhoneStore(tmp_path)
    s.account_id = s.account("Hostile")
    return s


@pytest.mark.parametrize("name,kind,reason", MONITOR_CASES, ids=[c[0] for c in MONITOR_CASES])
def test_monitor_against_a_hostile_registrar_reports_failed_and_backs_off(hostile, monitor_store, name, kind, reason):
    from tests.monitor.running import children, kill
    peer = hostile(BEHAVIOURS[name])
    p = monitor_store.phone(monitor_store.account_id, "alice", "alicepw", [Server(peer.server("UDP"))])
    m = start_monitor(monitor_store, "--timeout", str(BUDGET), "--retry-interval", "0.5", "--retry-max", "2")
    try:
        def failed_row():
            row = monitor_store.statuses().get(p.id)
            return row if row is not None and row.state == "failed" else None
        row = wait_for("the phone reported failed", failed_row, timeout=20)
        assert kind in row.last_error and reason in row.last_error, row.last_error
        assert not row.registered
        wait_for("the failure in the metrics",
                 lambda: (m.metric("sipphones_registration_failures_total", reason=kind) or 0) >= 1)
        # backoff: over the next 4 s one REGISTER per retry at most (waits doubling from 0.5 s to
        # 2 s, up to 10 % earlier by the jitter), whatever the registrar says; a rejection waits
        # 30 minutes
        before = peer.transactions
        time.sleep(4.0)
        sent = peer.transactions - before
        limit = 0 if kind == "auth_rejected" else 8
        assert sent <= limit, (name, sent)
        if name == "503_absurd_retry_after":
            assert "capped to 3600 s" in m.log(), m.log()
            assert m.log().count("capped to 3600 s") == 1
            assert sent == 0                          # the one server is avoided for the capped hour
        assert monitor_store.statuses()[p.id].state == "failed"
        assert m.terminate()[0] == 0
    finally:
        for pid in children(m.proc.pid):
            kill(pid)
        m.kill()


async def test_run_check_deadline_is_hard_and_every_set_still_gets_a_result(hostile):
    """Without a sequence budget the transactions alone would take 30 s; the driver's deadline
    stops the check, the un-REGISTER of what may be bound is given ``stop_grace``, then the check
    ends with a result for every set."""
    from sipphones.registration_config import registration_config
    from sipphones.sip.config import RegistrationPolicy, TransactionTimers
    from sipphones.sip.events import ResultKind
    from sipphones.sipio.runner import run_check
    from sipphones.sipio.stack import SipStack

    peer = hostile(BEHAVIOURS["silent"])
    config = registration_config(phone((peer.server("UDP"), Transport.UDP), (peer.server("TCP"), Transport.TCP)))
    policy = RegistrationPolicy(timers=TransactionTimers(t1=0.1, budget=30.0))
    stack = SipStack.create()
    try:
        started = time.monotonic()
        run = await asyncio.wait_for(run_check(stack, config, policy=policy, timeout=0.5, stop_grace=0.3), 30)
        elapsed = time.monotonic() - started
    finally:
        await stack.close()
    assert elapsed <= 0.8 + MARGIN
    assert not run.completed
    assert [r.slot for r in run.results] == [1, 2]
    first, second = run.results
    assert first.unregister is not None and first.unregister.kind is ResultKind.TIMEOUT   # cut, not waited for
    assert second.kind is ResultKind.NOT_TRIED
