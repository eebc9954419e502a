"""Zoom's error contract everywhere: odd inputs at every endpoint never give a 500 or a foreign body."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.api.zoom import (
    CURRENT_SCALARS, LEGACY_FIELDS, assert_error, current_body, is_zoom_error, legacy_body, legacy_phones,
    legacy_update_body,
)

ODD_VALUES = [
    None, True, False, 0, -1, 1.5, 1e308, -1e308, 2**63, -(2**63) - 1, 10**30,
    "", " ", "\x00", "a\x00b", "\t\r\n", "\u202e\u200b", "😀" * 40, "é" * 64, "ß" * 65, "x" * 100_000,
    "null", "' OR 1=1 --", "%s%n%x", "../../etc/passwd", "<script>alert(1)</script>", "${jndi:ldap://x}",
    "192.0.2.1:5060", "[::1]", "UDP", "60", "alice@example.com",
    [], [1, "a", None], {}, {"a": {"b": [1, {"c": None}]}}, {"register_server": "192.0.2.1"},
]
RAW_BODIES = [
    b"", b"{", b"}", b"[]", b"null", b"0", b"\"\"", b"{\"a\":\"\\ud800\"}", b"\xff\xff\xff",
    b"{\"registration_expire_time\": 1e400}", b"{\"user_name\": 123456789012345678901234567890}",
    b"[" * 3000 + b"]" * 3000, b"{\"a\":" * 2000 + b"1" + b"}" * 2000, b"\x00" * 100,
    b"{\"user_email\": \"alice@example.com\"}" * 2,
]
SERVER_KEYS = ("server", "server_2", "server_3")
INNER = ("register_server", "proxy_server", "transport_protocol")


class Checker:
    """Sends requests and collects every answer that breaks the contract (all reported at once)."""

    def __init__(self, client: httpx.Client):
        self.client = client
        self.failures: list[str] = []
        self.count = 0

    def send(self, method: str, path: str, **kw) -> httpx.Response:
        r = self.client.request(method, path, **kw)
        self.count += 1
        what = f"{method} {path} {str(kw)[:160]!r} -> {r.status_code} {r.text[:160]!r}"
        if r.status_code >= 500:
            self.failures.append("server error: " + what)
        elif r.status_code >= 400:
            try:
                is_zoom_error(r)
            except AssertionError as e:
                self.failures.append(f"not Zoom's error shape ({e}): " + what)
        elif r.status_code == 204:
            if r.content:
                self.failures.append("204 with a body: " + what)
        elif not r.headers.get("content-type", "").startswith("application/json"):
            self.failures.append("success that is not JSON: " + what)
        return r

    def check(self) -> None:
        assert not self.failures, f"{len(self.failures)} of {self.count} requests broke the contract:\n" + \
            "\n".join(self.failures[:40])


def _created_id(r: httpx.Response) -> str | None:
    if r.status_code == 201:
        body = r.json()
        return body.get("id") or body.get("phone_id")
    return None


def test_odd_field_values_on_create(api):
    chk = Checker(api)
    for field in LEGACY_FIELDS:
        for value in ODD_VALUES:
            r = chk.send("POST", "/v2/sip_phones", json=legacy_body(**{field: value}))
            if pid := _created_id(r):  # accepted: it must also store, list and delete cleanly
                assert pid in legacy_phones(api), r.text
                chk.send("DELETE", f"/v2/sip_phones/{pid}")
    for field in (*CURRENT_SCALARS, *SERVER_KEYS):
        for value in ODD_VALUES:
            r = chk.send("POST", "/v2/sip_phones/phones", json=current_body(**{field: value}))
            if pid := _created_id(r):
                chk.send("DELETE", f"/v2/sip_phones/phones/{pid}")
    for key in SERVER_KEYS:
        for inner in INNER:
            for value in ODD_VALUES:
                body = current_body()
                body[key] = {"register_server": "192.0.2.1", inner: value}
                if pid := _created_id(chk.send("POST", "/v2/sip_phones/phones", json=body)):
                    chk.send("DELETE", f"/v2/sip_phones/phones/{pid}")
    chk.check()
    assert api.get("/v2/sip_phones").status_code == 200


def test_odd_field_values_on_update(api):
    chk = Checker(api)
    legacy_id = api.post("/v2/sip_phones", json=legacy_body()).json()["id"]
    current_id = api.post("/v2/sip_phones/phones", json=current_body("alice@example.com.pc")).json()["phone_id"]
    for field in LEGACY_FIELDS:
        for value in ODD_VALUES:
            chk.send("PATCH", f"/v2/sip_phones/{legacy_id}", json=legacy_update_body(**{field: value}))
    for field in (*CURRENT_SCALARS, *SERVER_KEYS):
        for value in ODD_VALUES:
            chk.send("PATCH", f"/v2/sip_phones/phones/{current_id}", json={field: value})
    for key in SERVER_KEYS:
        for inner in INNER:
            for value in ODD_VALUES:
                chk.send("PATCH", f"/v2/sip_phones/phones/{current_id}", json={key: {inner: value}})
    chk.check()
    assert set(legacy_phones(api)) == {legacy_id, current_id}


def test_odd_whole_bodies(api):
    chk = Checker(api)
    pid = api.post("/v2/sip_phones", json=legacy_body()).json()["id"]
    targets = [("POST", "/v2/sip_phones"), ("POST", "/v2/sip_phones/phones"), ("PATCH", f"/v2/sip_phones/{pid}"),
               ("PATCH", f"/v2/sip_phones/phones/{pid}"), ("POST", "/v2/users")]
    for method, path in targets:
        for value in ODD_VALUES:
            if isinstance(value, dict) and value:  # an object body is a real request; covered elsewhere
                continue
            chk.send(method, path, json=value)
        for raw in RAW_BODIES:
            for ctype in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
                chk.send(method, path, content=raw, headers={"Content-Type": ctype})
        chk.send(method, path, content=b"user_email=alice%40example.com")
    chk.check()
    assert list(legacy_phones(api)) == [pid]


def test_odd_user_requests(api):
    chk = Checker(api)
    for field in ("email", "first_name", "last_name", "type"):
        for value in ODD_VALUES:
            info = {"email": "odd@example.com", field: value}
            r = chk.send("POST", "/v2/users", json={"action": "create", "user_info": info})
            if r.status_code == 201:
                chk.send("DELETE", f"/v2/users/{r.json()['id']}")
    for value in ODD_VALUES:
        chk.send("POST", "/v2/users", json={"action": value, "user_info": {"email": "odd@example.com"}})
        chk.send("POST", "/v2/users", json={"action": "create", "user_info": value})
    chk.check()
    assert [u["email"] for u in api.get("/v2/users").json()["users"]] == ["alice@example.com"]


ODD_STRINGS = ["", " ", "0", "-1", "1e3", "0x10", "9" * 40, "9" * 5000, "%00", "\x00", "é", "😀", "null",
               "[]", "{}", "' OR '1'='1", "a" * 10_000, "..", "%2e%2e%2f", "\u202e"]


def test_odd_query_parameters(api):
    chk = Checker(api)
    for path in ("/v2/sip_phones", "/v2/sip_phones/phones", "/v2/users"):
        for name in ("page_size", "page_number", "next_page_token", "search_key"):
            for value in ODD_STRINGS:
                chk.send("GET", path, params={name: value})
            chk.send("GET", path, params=[(name, "1"), (name, "x")])
        chk.send("GET", path, params={"page_size": "5", "next_page_token": "x", "page_number": "2", "search_key": "y"})
    chk.check()


ODD_IDS = ["%00", "a%00b", "%ff%fe", "%C3%A9", "😀", "x" * 3000, "..", "%2e%2e", "%20", "0", "-1", "null",
           "'%20OR%201=1", "%25", "a%2Fb", "~", "_"]


def test_odd_path_ids(api):
    chk = Checker(api)
    for pid in ODD_IDS:
        chk.send("PATCH", f"/v2/sip_phones/{pid}", json=legacy_update_body())
        chk.send("DELETE", f"/v2/sip_phones/{pid}")
        chk.send("PATCH", f"/v2/sip_phones/phones/{pid}", json={"password": "x"})
        chk.send("DELETE", f"/v2/sip_phones/phones/{pid}")
        chk.send("DELETE", f"/v2/users/{pid}")
    chk.check()


def test_odd_token_requests(http, creds):
    chk = Checker(http)
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    for value in ODD_STRINGS:
        for data in ({"grant_type": value, "account_id": creds.account_id},
                     {"grant_type": "account_credentials", "account_id": value}):
            chk.send("POST", "/oauth/token", data=data, headers={"Authorization": f"Basic {basic}"})
            chk.send("POST", "/oauth/token", params=data, headers={"Authorization": f"Basic {basic}"})
        encoded = base64.b64encode(f"{value}:{value}".encode()).decode()
        chk.send("POST", "/oauth/token", data={"grant_type": "account_credentials", "account_id": creds.account_id},
                 headers={"Authorization": f"Basic {encoded}"})
    for raw in RAW_BODIES:
        chk.send("POST", "/oauth/token", content=raw,
                 headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"})
    chk.check()


def test_odd_bearer_tokens(http):
    chk = Checker(http)
    for value in ["x", "a.b.c", "e30.e30.", "eyJhbGciOiJub25lIn0.e30.", "." * 100, "x" * 20_000,
                  base64.b64encode(b"\x00" * 64).decode()]:
        for method, path in (("GET", "/v2/sip_phones"), ("POST", "/v2/sip_phones/phones"), ("GET", "/v2/users")):
            r = chk.send(method, path, headers={"Authorization": f"Bearer {value}"}, json={})
            assert r.status_code == 401
    chk.check()


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/v2/nothing", 404), ("GET", "/nothing", 404), ("GET", "/v2/sip_phones/a/b", 404), ("POST", "/v2", 404),
    ("PUT", "/v2/sip_phones", 405), ("GET", "/v2/sip_phones/phones/abc", 405), ("PUT", "/v2/sip_phones/abc", 405),
    ("POST", "/v2/sip_phones/phones/abc", 405), ("DELETE", "/v2/sip_phones", 405), ("PATCH", "/v2/users", 405),
])
def test_unknown_routes_and_methods_answer_in_zoom_shape(api, method, path, status):
    assert_error(api.request(method, path), status, status)


def test_error_responses_carry_a_tracking_id(api, http):
    for r in (api.get("/v2/nothing"), http.get("/v2/sip_phones"), api.post("/v2/sip_phones", json={}),
              api.get("/v2/sip_phones")):
        assert r.headers.get("x-zm-trackingid")
