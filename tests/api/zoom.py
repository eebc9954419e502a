"""Helpers of the API contract tests: request bodies, Zoom error assertions, listing, bulk set-up."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from typing import Iterator

import httpx

from tests.servers import Credentials, ServerProcess, get_token

LEGACY_FIELDS = (
    "user_email", "user_name", "authorization_name", "password", "domain",
    "register_server", "register_server2", "register_server3",
    "proxy_server", "proxy_server2", "proxy_server3",
    "transport_protocol", "transport_protocol2", "transport_protocol3",
    "registration_expire_time", "voice_mail",
)
LEGACY_CREATE_REQUIRED = (
    "authorization_name", "domain", "password", "proxy_server", "register_server", "user_email", "user_name",
    "voice_mail",
)
LEGACY_UPDATE_REQUIRED = (
    "authorization_name", "domain", "password", "proxy_server", "proxy_server2", "proxy_server3",
    "register_server", "register_server2", "register_server3", "user_name", "voice_mail",
)
CURRENT_SCALARS = (
    "user_email", "user_name", "authorization_name", "password", "domain", "registration_expire_time",
    "voice_mail", "display_number",
)
LEGACY_SUFFIXES = (".win", ".mac", ".android", ".ipad", ".iphone", ".linux", ".pc", ".mobile", ".pad")
CURRENT_SUFFIXES = (".pc", ".mobile", ".pad")

_counter = itertools.count(1000)


def legacy_body(email: str = "alice@example.com", **changes) -> dict:
    """A valid legacy create body (the seed's required fields, voice_mail included)."""
    n = next(_counter)
    body = {
        "user_email": email, "user_name": f"{n}", "authorization_name": f"auth{n}", "password": f"pw-{n}-secret",
        "domain": "sip.example.com", "register_server": "192.0.2.10", "proxy_server": "192.0.2.11",
        "voice_mail": "4000",
    }
    body.update(changes)
    return body


def legacy_update_body(**changes) -> dict:
    """A valid legacy PATCH body: every field the extract marks required."""
    body = {
        "user_name": "2001", "authorization_name": "auth2001", "password": "new-secret", "domain": "pbx.example.org",
        "register_server": "198.51.100.1", "register_server2": "198.51.100.2", "register_server3": "",
        "proxy_server": "198.51.100.11", "proxy_server2": "198.51.100.12", "proxy_server3": "",
        "voice_mail": "5000",
    }
    body.update(changes)
    return body


def current_body(email: str = "alice@example.com", **changes) -> dict:
    """A valid current-set create body."""
    n = next(_counter)
    body = {
        "user_email": email, "user_name": f"{n}", "authorization_name": f"auth{n}", "password": f"pw-{n}-secret",
        "domain": "sip.example.com",
        "server": {"register_server": "192.0.2.20", "proxy_server": "192.0.2.21", "transport_protocol": "TCP"},
    }
    body.update(changes)
    return body


def is_zoom_error(r: httpx.Response) -> dict:
    """The body of an error response, after checking it is Zoom's shape (JSON code + message)."""
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text[:200])
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("code"), int) and not isinstance(body.get("code"), bool), body
    assert isinstance(body.get("message"), str) and body["message"], body
    if "errors" in body:
        assert isinstance(body["errors"], list) and body["errors"], body
        for e in body["errors"]:
            assert set(e) == {"field", "message"} and all(isinstance(v, str) and v for v in e.values()), body
    return body


def assert_error(r: httpx.Response, status: int, code: int, message: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = is_zoom_error(r)
    assert body["code"] == code, body
    if message is not None:
        assert body["message"] == message, body
    return body


def assert_validation(r: httpx.Response, *fields: str) -> dict[str, str]:
    """HTTP 400, code 300, "Validation Failed.", and exactly ``fields`` named. Returns field -> message."""
    body = assert_error(r, 400, 300, "Validation Failed.")
    named = {e["field"]: e["message"] for e in body.get("errors", [])}
    assert set(named) == set(fields), body
    return named


def list_all(client: httpx.Client, path: str, page_size: int = 300, **params) -> list[dict]:
    """Every phone of a listing, following next_page_token (bounded)."""
    out: list[dict] = []
    token = ""
    for _ in range(1000):
        q = dict(params, page_size=page_size)
        if token:
            q["next_page_token"] = token
        r = client.get(path, params=q)
        assert r.status_code == 200, r.text
        out.extend(r.json()["phones"])
        token = r.json()["next_page_token"]
        if not token:
            return out
    raise AssertionError("pagination did not end")


def legacy_phones(client: httpx.Client, **params) -> dict[str, dict]:
    return {p["id"]: p for p in list_all(client, "/v2/sip_phones", **params)}


def current_phones(client: httpx.Client, **params) -> dict[str, dict]:
    return {p["phone_id"]: p for p in list_all(client, "/v2/sip_phones/phones", **params)}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


@contextlib.contextmanager
def plain_client(server: ServerProcess, **kw) -> Iterator[httpx.Client]:
    """A client for the loopback server over plain HTTP. ``verify=False`` only skips loading the CA
    bundle (about 45 ms per client); no TLS is ever spoken here."""
    with server.client(verify=False, **kw) as c:
        yield c


@contextlib.contextmanager
def token_client(server: ServerProcess, creds: Credentials) -> Iterator[httpx.Client]:
    with plain_client(server) as c:
        c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
        yield c


def create_users(client: httpx.Client, count: int, prefix: str = "bulk") -> list[str]:
    """Users made through the API (POST /v2/users); returns their e-mail addresses."""
    emails = []
    for _ in range(count):
        email = unique_email(prefix)
        r = client.post("/v2/users", json={"action": "create", "user_info": {"email": email, "type": 1}})
        assert r.status_code == 201, r.text
        emails.append(email)
    return emails


def addresses(emails: list[str], suffixes: tuple[str, ...] = LEGACY_SUFFIXES) -> Iterator[str]:
    """Distinct phone addresses: each user's plain address, then its suffixed ones."""
    for email in emails:
        yield email
        for s in suffixes:
            yield email + s
