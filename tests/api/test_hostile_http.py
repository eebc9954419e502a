"""A battery of hostile HTTP inputs against a real ``sipphones serve`` on SQLite (issue 10).

Every answer must be Zoom's JSON shape ``{"code", "message"}`` (or, for input that is not HTTP at
all, a closed connection), never a 500 or a framework's text/plain body, and the server must go on
serving: a health check follows every input, and the log shows no traceback at the end.
"""

from __future__ import annotations

import base64

import pytest

from tests.api.http_raw import Answer, exchange, request
from tests.servers import Admin, get_token, start_sqlite_server


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    server = start_sqlite_server(tmp_path_factory.mktemp("hostile"))
    creds = Admin(server.database_url, server.data_dir).account()
    with server.client() as c:
        token = get_token(c, creds)
    yield server, creds, token
    server.stop()


def _raw_inputs(token: str, creds) -> list[tuple[str, bytes]]:
    bearer = f"Authorization: Bearer {token}\r\n".encode()
    basic = ("Authorization: Basic " + base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
             + "\r\n").encode()

    def post(path: str, body: bytes, ctype: bytes = b"application/json", extra: bytes = b"") -> bytes:
        return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + bearer + b"Content-Type: " + ctype
                + b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    cases = {
        # request lines
        "garbage": b"GARBAGE\r\n\r\n",
        "method only": b"GET\r\n\r\n",
        "no path": b"GET  HTTP/1.1\r\nHost: t\r\n\r\n",
        "extra token": b"GET /healthz HTTP/1.1 extra\r\nHost: t\r\n\r\n",
        "leading space": b" GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "bad version": b"GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n",
        "http 0.9": b"GET /healthz\r\n\r\n",
        "tls hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,
        "http2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "binary": bytes(range(256)),
        "absolute form": b"GET http://evil.example/v2/sip_phones HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n",
        "long url": b"GET /v2/sip_phones/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        # methods
        "bogus method": b"FOO /v2/sip_phones HTTP/1.1\r\nHost: t\r\n\r\n",
        "lowercase method": b"get /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        "connect": b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
        "trace": b"TRACE /v2/sip_phones HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "put": b"PUT /v2/sip_phones HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "delete collection": b"DELETE /v2/sip_phones HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "options": b"OPTIONS /v2/sip_phones HTTP/1.1\r\nHost: t\r\n\r\n",
        # headers
        "huge header": b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n",
        "many headers": b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
        "no colon": b"GET /healthz HTTP/1.1\r\nHost: t\r\nBroken header\r\n\r\n",
        "space before colon": b"GET /healthz HTTP/1.1\r\nHost : t\r\n\r\n",
        "obs fold": b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n",
        "header nul": b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
        "header high bytes": b"GET /v2/sip_phones HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
        "two lengths": post("/v2/sip_phones", b"{}", extra=b"Content-Length: 5\r\n"),
        "length and chunked": (b"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\n" + bearer + b"Content-Length: 4\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "negative length": b"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        "hex length": b"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\nContent-Length: 0x10\r\n\r\n",
        "huge length": post("/v2/sip_phones", b"").replace(b"Content-Length: 0", b"Content-Length: " + b"9" * 30),
        "bad chunk size": (b"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\n" + bearer
                           + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
        "unknown transfer coding": (b"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\n" + bearer
                                    + b"Transfer-Encoding: gzip\r\n\r\n"),
        "two authorizations": (b"GET /v2/sip_phones HTTP/1.1\r\nHost: t\r\n" + bearer
                               + b"Authorization: Bearer nonsense\r\n\r\n"),
        "two hosts": b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "bearer garbage": b"GET /v2/sip_phones HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + b"x" * 8000 + b"\r\n\r\n",
        "basic garbage": (b"POST /oauth/token?grant_type=account_credentials HTTP/1.1\r\nHost: t\r\n"
                          b"Authorization: Basic !!!!\r\n\r\n"),
        "expect huge": post("/v2/sip_phones", b"", extra=b"Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", b"Content-Length: 900000000"),
        # content types and bodies
        "text/plain json": post("/v2/sip_phones", b'{"user_email": "alice@example.com"}', b"text/plain"),
        "multipart no boundary": post("/v2/sip_phones", b"--x\r\n\r\n", b"multipart/form-data"),
        "form on json endpoint": post("/v2/sip_phones", b"a=b&c=d", b"application/x-www-form-urlencoded"),
        "huge content type": post("/v2/sip_phones", b"{}", b"application/json; " + b"x=y; " * 2000),
        "content type nul": post("/v2/sip_phones", b"{}", b"application/json\x00"),
        "empty body": post("/v2/sip_phones", b""),
        "truncated json": post("/v2/sip_phones", b'{"user_email": "ali'),
        "json array": post("/v2/sip_phones/phones", b"[1, 2, 3]"),
        "json scalar": post("/v2/sip_phones/phones", b"12345"),
        "deep arrays": post("/v2/sip_phones", b"[" * 30000 + b"]" * 30000),
        "deep objects": post("/v2/sip_phones/phones", b'{"a":' * 10000 + b"1" + b"}" * 10000),
        "invalid utf-8 body": post("/v2/sip_phones", b'{"user_email": "\xff\xfe\xfd"}'),
        "lone surrogate": post("/v2/sip_phones", b'{"user_email": "\\ud800"}'),
        "nul body": post("/v2/sip_phones", b"\x00" * 1000),
        "bom": post("/v2/sip_phones", b'\xef\xbb\xbf{"user_email": "alice@example.com"}'),
        "duplicate keys": post("/v2/sip_phones", b'{"user_email": "a@example.com", "user_email": 5}'),
        "huge number": post("/v2/sip_phones/phones", b'{"registration_expire_time": 1' + b"0" * 5000 + b"}"),
        "nan": post("/v2/sip_phones/phones", b'{"registration_expire_time": NaN}'),
        "oauth invalid utf-8 form": (b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n" + basic
                                     + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 31\r\n\r\n"
                                     + b"grant_type=\xff\xfe&account_id=%ff%00"),
        "oauth json body": (b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n" + basic
                            + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
        # query strings and paths
        "huge query": b"GET /v2/sip_phones?" + b"page_size=1&" * 1200 + b" HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "query nul": b"GET /v2/sip_phones?search_key=%00&page_size=%00 HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "query invalid utf-8": b"GET /v2/sip_phones/phones?search_key=%ff%fe HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "query page token junk": (b"GET /v2/sip_phones/phones?next_page_token=" + b"A" * 4000
                                  + b" HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n"),
        "path traversal": b"GET /../../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "static traversal": b"GET /docs/static/../../../../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "encoded traversal": b"GET /docs/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n",
        "encoded slash id": b"DELETE /v2/sip_phones/..%2f..%2fusers HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "double slash": b"GET //v2//sip_phones HTTP/1.1\r\nHost: t\r\n\r\n",
        "path nul": b"GET /v2/sip_phones/%00 HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
        "raw nul in path": b"GET /v2/sip\x00phones HTTP/1.1\r\nHost: t\r\n\r\n",
        "path invalid utf-8": b"PATCH /v2/sip_phones/phones/%ff%fe HTTP/1.1\r\nHost: t\r\n" + bearer
                              + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        "path high bytes": b"GET /v2/sip_phones/\xff HTTP/1.1\r\nHost: t\r\n\r\n",
        "trailing slash": b"GET /v2/sip_phones/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        "unknown path": b"GET /wp-admin/setup.php HTTP/1.1\r\nHost: t\r\n\r\n",
        "missing static": b"GET /docs/static/nothing.js HTTP/1.1\r\nHost: t\r\n\r\n",
        "long id": b"DELETE /v2/sip_phones/phones/" + b"x" * 10000 + b" HTTP/1.1\r\nHost: t\r\n" + bearer + b"\r\n",
    }
    return list(cases.items())


def _acceptable(answer: Answer) -> str | None:
    """None when the answer keeps the contract, else what is wrong."""
    if answer.status is None:
        return None if answer.closed else "neither an answer nor a closed connection"
    if answer.status >= 500 and answer.status != 503:
        return f"server error {answer.status}"
    if answer.status >= 400:
        return None if answer.is_zoom_error() else "not Zoom's error shape"
    if not answer.headers.get("content-type", "").startswith("application/json") and answer.status != 204:
        return "a success that is not JSON"
    return None


def test_hostile_inputs_get_zoom_shaped_answers_and_the_server_keeps_serving(target):
    server, creds, token = target
    failures = []
    for name, raw in _raw_inputs(token, creds):
        answer = exchange(server.port, raw)
        if (problem := _acceptable(answer)) is not None:
            failures.append(f"{name}: {problem}: {answer.status} {answer.headers} {answer.body[:200]!r}")
        health = exchange(server.port, request("GET", "/healthz"))
        if health.status != 200:
            failures.append(f"{name}: the server stopped serving ({health.status})")
    assert not failures, "\n".join(failures)
    log = server.log()
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]


def test_hostile_bodies_leave_no_phone_behind(target):
    """What the battery sent was refused: the account has no phone."""
    server, creds, token = target
    with server.client() as c:
        c.headers["Authorization"] = f"Bearer {token}"
        assert c.get("/v2/sip_phones").json()["total_records"] == 0
