"""The emulator's wire (sipphones.api.emulator_wire) around a small ASGI app, in-process and under
a real uvicorn with ``sipphones serve``'s protocol: journal capture, account, fault answers, drop."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sipphones.api.emulator_wire import EmulatorWire
from sipphones.api.http_protocol import OneSendProtocol
from sipphones.emulator.faults import MALFORMED_BODY, FaultRules
from sipphones.emulator.journal import Journal, Matcher
from sipphones.emulator.masking import MASK
from tests.servers import free_port

TOKENS = {"tok-acc1": "acc1", "tok-acc2": "acc2"}


async def echo(request: Request):
    body = await request.body()
    return JSONResponse({"got": orjson.loads(body) if body else None, "password": "from-answer"}, 201)


async def token(request: Request):
    form = dict(parse_qsl((await request.body()).decode()))
    return JSONResponse({"access_token": "eyJ.secret", "account": form.get("account_id")
                         or request.query_params.get("account_id")})


async def health(request: Request):
    return PlainTextResponse("ok")


@dataclass
class Parts:
    journal: Journal = field(default_factory=Journal)
    faults: FaultRules = field(default_factory=FaultRules)


def wired(parts: Parts) -> EmulatorWire:
    app = Starlette(routes=[Route("/v2/echo", echo, methods=["POST", "GET"]),
                            Route("/oauth/token", token, methods=["POST"]), Route("/healthz", health)])
    return EmulatorWire(app, lambda: parts, TOKENS.get)


@pytest.fixture
def parts() -> Parts:
    return Parts()


@pytest.fixture
async def local(parts):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(wired(parts)), base_url="http://emu") as client:
        yield client


@pytest.fixture
def served(parts):
    """The wired app under a real uvicorn with sipphones serve's HTTP protocol, in a thread."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(wired(parts), host="127.0.0.1", port=port, http=OneSendProtocol,
                                           lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


async def test_requests_and_answers_are_journaled_masked_with_their_account(parts, local):
    r = await local.post("/v2/echo", json={"user_email": "a@example.com", "password": "hunter2"},
                   headers={"authorization": "Bearer tok-acc1"})
    assert r.status_code == 201 and r.json()["got"]["password"] == "hunter2"   # the app saw it all
    await local.get("/healthz")
    await local.post("/v2/echo", headers={"authorization": "Bearer forged"})
    entries, total = parts.journal.query(Matcher())
    assert total == 2                                       # /healthz is not a Zoom path
    first = entries[0].as_dict()
    assert first["account_id"] == "acc1" and first["method"] == "POST" and first["path"] == "/v2/echo"
    assert first["request"]["body"] == {"user_email": "a@example.com", "password": MASK}
    assert first["request"]["headers"]["authorization"] == f"Bearer {MASK}"
    assert first["response"]["status"] == 201 and first["response"]["body"]["password"] == MASK
    assert entries[1].account_id is None


async def test_a_token_request_belongs_to_the_account_it_names(parts, local):
    r = await local.post("/oauth/token", data={"grant_type": "account_credentials", "account_id": "acc2"},
                   auth=("cid", "secret"))
    assert r.json()["account"] == "acc2"                    # the body read ahead reached the app whole
    await local.post("/oauth/token?grant_type=account_credentials&account_id=acc1", auth=("cid", "secret"))
    entries, _ = parts.journal.query(Matcher(path="/oauth/token"))
    assert [e.account_id for e in entries] == ["acc2", "acc1"]
    d = entries[0].as_dict()
    assert d["request"]["headers"]["authorization"] == f"Basic {MASK}"
    assert d["response"]["body"]["access_token"] == MASK


async def test_a_token_rule_can_target_an_account_named_in_the_form(parts, local):
    parts.faults.add({"path": "/oauth/token", "account_id": "acc2", "status": 503, "retry_after": 1})
    assert (await local.post("/oauth/token", data={"account_id": "acc1"})).status_code == 200
    r = await local.post("/oauth/token", data={"account_id": "acc2"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1"


async def test_a_status_rule_answers_zoom_s_body_and_is_journaled(parts, local):
    rule = parts.faults.add({"method": "POST", "path": "/v2/*", "status": 429, "retry_after": 3, "times": 1})
    r = await local.post("/v2/echo", json={"a": 1}, headers={"authorization": "Bearer tok-acc1"})
    assert r.status_code == 429 and r.headers["retry-after"] == "3" and r.headers["x-ratelimit-type"] == "QPS"
    assert r.json()["code"] == 429 and len(r.headers["x-zm-trackingid"]) == 24
    assert (await local.post("/v2/echo", json={"a": 2})).status_code == 201
    entries, _ = parts.journal.query(Matcher())
    assert entries[0].fault_id == rule.id and entries[0].status == 429
    assert entries[0].request.value == {"a": 1}              # the faulted request's body is journaled
    assert entries[1].fault_id is None


async def test_a_malformed_rule_sends_a_body_no_json_parser_takes(parts, local):
    parts.faults.add({"action": "malformed"})
    r = await local.get("/v2/echo")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.content == MALFORMED_BODY
    with pytest.raises(ValueError):
        r.json()


async def test_a_delay_rule_waits_then_lets_the_request_through(parts, local):
    parts.faults.add({"action": "delay", "delay_ms": 300})
    started = time.monotonic()
    assert (await local.post("/v2/echo", json={})).status_code == 201
    assert time.monotonic() - started >= 0.3
    assert parts.journal.query(Matcher())[0][0].duration_ms >= 300


async def test_a_drop_in_process_raises_what_httpx_raises_for_a_dropped_connection(parts, local):
    rule = parts.faults.add({"action": "drop", "times": 1})
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await local.post("/v2/echo", json={})
    assert (await local.post("/v2/echo", json={})).status_code == 201
    entry = parts.journal.query(Matcher())[0][0].as_dict()
    assert entry["dropped"] is True and entry["response"] is None and entry["fault_id"] == rule.id


def test_a_drop_over_a_real_connection_closes_it_without_an_answer(parts, served):
    parts.faults.add({"action": "drop", "path": "/v2/echo", "times": 1})
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        served.post("/v2/echo", json={"a": 1})
    assert served.post("/v2/echo", json={"a": 2}).status_code == 201   # a new connection works
    entries, _ = parts.journal.query(Matcher())
    assert entries[0].status is None and entries[0].as_dict()["dropped"] is True
    assert entries[1].status == 201


def test_a_drop_sends_no_byte_on_the_raw_socket(parts, served):
    parts.faults.add({"action": "drop", "times": 1})
    port = int(str(served.base_url).rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /v2/echo HTTP/1.1\r\nhost: x\r\n\r\n")
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = b""
    assert data == b""


def test_a_delay_and_status_over_a_real_connection(parts, served):
    parts.faults.add({"status": 503, "retry_after": 2, "delay_ms": 200, "delay_max_ms": 400})
    started = time.monotonic()
    r = served.get("/v2/echo")
    elapsed = time.monotonic() - started
    assert r.status_code == 503 and r.json() == {"code": 503, "message": "Service Unavailable."}
    assert r.headers["retry-after"] == "2" and elapsed >= 0.2


async def test_a_large_body_is_captured_within_the_bound_and_reaches_the_app_whole(parts, local):
    parts.journal = Journal(max_entry_bytes=4096)
    big = {"pad": "x" * 50_000, "password": "hunter2"}
    r = await local.post("/v2/echo", json=big)
    assert r.json()["got"]["pad"] == big["pad"]
    d = parts.journal.query(Matcher())[0][0].as_dict()
    assert d["request"]["body_truncated"] and d["request"]["body_bytes"] > 50_000
    assert len(d["request"]["body"]) <= 4096 and "hunter2" not in d["request"]["body"]


async def test_without_parts_the_app_runs_alone(parts):
    app = wired(parts)
    app.parts = lambda: None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://emu") as client:
        assert (await client.post("/v2/echo", json={})).status_code == 201
    assert len(parts.journal) == 0
