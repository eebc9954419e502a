"""The HTTP surface's limits (issue 10): body and head sizes, keep-alive, idle and slow connections,
the connection cap, client disconnects, and no answer built from the Host header. Each test talks
to a real ``sipphones serve`` process on SQLite (the HTTP layer does not depend on the store)."""

from __future__ import annotations

import base64
import time

import pytest

from tests.api.http_raw import connect, exchange, read_answer, request, wait_closed
from tests.servers import Admin, get_token, start_sqlite_server

MAX_BODY = 65536
MAX_FORM = 8192
MAX_HEAD = 32768


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    server = start_sqlite_server(tmp_path_factory.mktemp("limits"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def creds(srv):
    return Admin(srv.database_url, srv.data_dir).account()


@pytest.fixture(scope="module")
def token(srv, creds):
    with srv.client() as c:
        return get_token(c, creds)


def _basic(user: str = "x", password: str = "y") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _assert_413(answer) -> None:
    assert answer.status == 413, answer
    assert answer.is_zoom_error() and answer.json()["code"] == 413, answer
    assert answer.closed, "the unread rest of the body must not be parsed: the connection is closed"


# --- defect 1: /oauth/token reads a whole form body before the credentials are checked ----------

def test_token_form_body_over_its_limit_is_refused_before_it_is_read(srv):
    head = (f"POST /oauth/token HTTP/1.1\r\nHost: t\r\nAuthorization: {_basic()}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {100 * 2**20}\r\n\r\n")
    with connect(srv.port) as s:
        s.sendall(head.encode() + b"a" * 1000)        # 100 MB announced, 1,000 bytes sent
        _assert_413(read_answer(s))


def test_token_chunked_form_body_is_cut_off_at_its_limit(srv):
    head = (f"POST /oauth/token HTTP/1.1\r\nHost: t\r\nAuthorization: {_basic()}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1024, b"a" * 1024)
    with connect(srv.port) as s:
        s.sendall(head.encode())
        for _ in range(MAX_FORM // 1024 + 1):          # one chunk past the limit, and no end chunk
            s.sendall(chunk)
        _assert_413(read_answer(s))


def test_token_form_body_within_its_limit_is_read(srv, creds):
    form = f"grant_type=account_credentials&account_id={creds.account_id}&pad=".encode()
    form += b"p" * (MAX_FORM - len(form))
    raw = request("POST", "/oauth/token", body=form, headers={
        "Authorization": _basic(creds.client_id, creds.client_secret),
        "Content-Type": "application/x-www-form-urlencoded"})
    answer = exchange(srv.port, raw)
    assert answer.status == 200 and answer.json()["access_token"], answer


# --- defect 2: no size limit for bodies and request heads ------------------------------------------

def test_json_body_over_the_limit_is_refused_before_it_is_read(srv, token):
    head = (f"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {500 * 2**20}\r\n\r\n")
    with connect(srv.port) as s:
        s.sendall(head.encode() + b"{" * 1000)
        _assert_413(read_answer(s))


def test_chunked_json_body_is_counted_as_it_arrives_and_cut_off(srv, token):
    head = (f"PATCH /v2/sip_phones/phones/abc HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (8192, b" " * 8192)
    with connect(srv.port) as s:
        s.sendall(head.encode())
        for _ in range(MAX_BODY // 8192 + 1):
            s.sendall(chunk)
        _assert_413(read_answer(s))


def test_a_body_at_the_limit_is_read(srv, token):
    start = b'{"user_email": "nobody@example.com"'
    body = start + b" " * (MAX_BODY - len(start) - 1) + b"}"
    assert len(body) == MAX_BODY
    raw = request("POST", "/v2/sip_phones", body=body,
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    answer = exchange(srv.port, raw)
    assert answer.status == 400 and answer.json()["code"] == 300, answer   # read, then validated


def test_a_request_head_over_the_limit_is_refused(srv):
    huge = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + "a" * (10 * 2**20) + "\r\n\r\n"
    with connect(srv.port) as s:
        try:
            s.sendall(huge.encode())
        except (ConnectionResetError, BrokenPipeError):
            pass                                       # closed while we were still sending: fine too
        answer = read_answer(s)
    if answer.status is not None:
        assert answer.status == 431 and answer.is_zoom_error() and answer.json()["code"] == 431, answer
    assert answer.closed
    # Many small headers count too.
    many = "".join(f"X-H{i}: {'v' * 40}\r\n" for i in range(MAX_HEAD // 40))
    answer = exchange(srv.port, f"GET /healthz HTTP/1.1\r\nHost: t\r\n{many}\r\n".encode())
    assert answer.status == 431 and answer.is_zoom_error() and answer.closed, answer


def test_a_request_head_under_the_limit_is_served(srv):
    big = "a" * (MAX_HEAD - 100)                     # a 32 KB bearer token is not unheard of
    answer = exchange(srv.port, f"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n".encode())
    assert answer.status == 200, answer


def test_pipelined_requests_longer_than_the_head_limit_together_are_served(srv):
    one = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n"
    with connect(srv.port) as s:
        s.sendall(one * 20)                            # 40 KB in one send, each head 2 KB
        received = b""
        while received.count(b"HTTP/1.1 200 ") < 20:
            chunk = s.recv(65536)
            assert chunk, received
            received += chunk
        assert b"HTTP/1.1 4" not in received


# --- defect 13: the keep-alive timeout equals the clients' default ---------------------------------

def test_an_idle_keep_alive_connection_outlives_the_clients_default(srv):
    with connect(srv.port) as s:
        s.sendall(request("GET", "/healthz"))
        assert read_answer(s).status == 200
        time.sleep(6)                                  # httpx keeps idle connections 5 s
        s.sendall(request("GET", "/healthz"))
        answer = read_answer(s)
        assert answer.status == 200 and not answer.closed, answer


# --- defect 14: a client that disconnects mid-request is logged with a traceback -------------------

def test_a_client_disconnecting_mid_body_leaves_no_traceback(srv, token):
    before = srv.log()
    for path, auth in (("/v2/sip_phones", f"Bearer {token}"), ("/oauth/token", _basic())):
        ctype = "application/json" if path != "/oauth/token" else "application/x-www-form-urlencoded"
        with connect(srv.port) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nContent-Type: {ctype}\r\n"
                      f"Content-Length: 1000\r\n\r\n{{\"a\":".encode())
            time.sleep(0.2)                            # the endpoint is reading the body
    time.sleep(0.5)
    assert exchange(srv.port, request("GET", "/healthz")).status == 200
    added = srv.log()[len(before):]
    assert "Traceback" not in added and "unexpected error" not in added, added


# --- defect 15: answers outside Zoom's shape, and the Host header reflected -------------------------

def test_a_trailing_slash_is_not_redirected_to_the_host_header(srv):
    for path in ("/v2/sip_phones/", "/v2/sip_phones/phones/", "/oauth/token/", "/healthz/"):
        answer = exchange(srv.port, request("GET", path, host="evil.example"))
        assert answer.status == 404 and answer.is_zoom_error(), (path, answer)
        assert "location" not in answer.headers, (path, answer)


def test_the_token_answer_does_not_echo_the_host_header(srv, creds):
    raw = request("POST", f"/oauth/token?grant_type=account_credentials&account_id={creds.account_id}",
                  host="evil.example", headers={"Authorization": _basic(creds.client_id, creds.client_secret)})
    answer = exchange(srv.port, raw)
    assert answer.status == 200, answer
    assert answer.json()["api_url"] == f"http://127.0.0.1:{srv.port}"


def test_the_token_answers_the_configured_api_url(tmp_path):
    server = start_sqlite_server(tmp_path, extra_env={"SIPPHONES_API_URL": "https://api.example.com/"})
    try:
        creds = Admin(server.database_url, server.data_dir).account()
        raw = request("POST", f"/oauth/token?grant_type=account_credentials&account_id={creds.account_id}",
                      host="evil.example", headers={"Authorization": _basic(creds.client_id, creds.client_secret)})
        assert exchange(server.port, raw).json()["api_url"] == "https://api.example.com"
    finally:
        server.stop()


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    b"GET /heal\x00thz HTTP/1.1\r\nHost: t\r\n\r\n",
])
def test_an_unparsable_request_is_answered_in_zooms_shape(srv, raw):
    answer = exchange(srv.port, raw)
    assert answer.status == 400 and answer.is_zoom_error() and answer.closed, answer


# --- defect 16: idle and slow connections are never timed out; no connection cap -----------------

@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    server = start_sqlite_server(tmp_path_factory.mktemp("impatient"), extra_env={
        "SIPPHONES_HTTP_IDLE_TIMEOUT_S": "1", "SIPPHONES_HTTP_HEADER_TIMEOUT_S": "2",
        "SIPPHONES_HTTP_KEEP_ALIVE_S": "1"})
    yield server
    server.stop()


def test_a_connection_that_sends_nothing_is_closed(impatient):
    with connect(impatient.port) as s:
        assert wait_closed(s, 6)


def test_a_request_head_dribbled_slowly_is_closed(impatient):
    with connect(impatient.port) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        deadline = time.monotonic() + 8
        try:
            while time.monotonic() < deadline:             # one header byte every 0.3 s: never done
                s.sendall(b"X")
                time.sleep(0.3)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            closed = wait_closed(s, 1)
        assert closed


def test_a_slow_request_head_within_the_deadline_is_served(impatient):
    with connect(impatient.port) as s:
        for part in (b"GET /healthz HTTP/1.1\r\n", b"Host: t\r\n", b"\r\n"):
            s.sendall(part)
            time.sleep(0.4)
        assert read_answer(s).status == 200


def test_the_keep_alive_timeout_is_configurable(impatient):
    with connect(impatient.port) as s:
        s.sendall(request("GET", "/healthz"))
        assert read_answer(s).status == 200
        assert wait_closed(s, 10)                      # 1 s here; the default keeps it open (test above)


def test_connections_over_the_cap_are_answered_in_zooms_shape(tmp_path):
    server = start_sqlite_server(tmp_path, extra_env={"SIPPHONES_HTTP_MAX_CONNECTIONS": "8"})
    held = []
    try:
        held = [connect(server.port) for _ in range(8)]
        time.sleep(0.3)
        answer = exchange(server.port, request("GET", "/healthz"))
        assert answer.status == 503 and answer.is_zoom_error() and answer.closed, answer
        for s in held:
            s.close()
        held = []
        deadline = time.monotonic() + 5
        while exchange(server.port, request("GET", "/healthz")).status != 200:
            assert time.monotonic() < deadline, "the server did not serve again once connections closed"
            time.sleep(0.1)
    finally:
        for s in held:
            s.close()
        server.stop()


# --- uvicorn's own protocols (serve --http httptools|h11) keep the body limit -----------------------

@pytest.mark.parametrize("protocol", ["httptools", "h11"])
def test_uvicorns_protocols_keep_the_body_limit_and_keep_alive(tmp_path, protocol):
    server = start_sqlite_server(tmp_path, extra_args=["--http", protocol],
                                 extra_env={"SIPPHONES_HTTP_KEEP_ALIVE_S": "1"})
    try:
        creds = Admin(server.database_url, server.data_dir).account()
        with server.client() as c:
            token = get_token(c, creds)
        head = (f"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {500 * 2**20}\r\n\r\n")
        with connect(server.port) as s:
            s.sendall(head.encode())
            _assert_413(read_answer(s))
        head = (f"POST /oauth/token HTTP/1.1\r\nHost: t\r\nAuthorization: {_basic()}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")
        with connect(server.port) as s:
            s.sendall(head.encode())
            for _ in range(MAX_FORM // 1024 + 1):
                s.sendall(b"%x\r\n%s\r\n" % (1024, b"a" * 1024))
            _assert_413(read_answer(s))
        with connect(server.port) as s:
            s.sendall(request("GET", "/healthz"))
            assert read_answer(s).status == 200
            assert wait_closed(s, 10)
    finally:
        server.stop()
