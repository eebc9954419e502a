"""``sipphones.client`` against a real ``sipphones serve`` (never the internet)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from sipphones.client import (
    AsyncSipPhonesClient, AuthenticationError, ConfigurationError, RateLimitError, RetryEvent, SipPhonesClient,
    SipPhonesError, TransportError, ZoomAPIError,
)
from tests.client.fixtures import EMAIL, legacy_fields
from tests.servers import Credentials, free_port, start_server


def client_for(creds: Credentials, base_url: str, **kw) -> SipPhonesClient:
    return SipPhonesClient(creds.account_id, creds.client_id, creds.client_secret, base_url=base_url, **kw)


def test_legacy_set_create_list_update_delete(account, base_url):
    with client_for(account, base_url) as zoom:
        phone = zoom.legacy_create_phone(legacy_fields())
        assert phone["id"] and phone["user_email"] == EMAIL and phone["password"] == "s3cret-pw"
        page = zoom.legacy_list_phones()
        assert page["total_records"] == 1 and page["phones"][0]["id"] == phone["id"]

        body = {k: v for k, v in phone.items() if k not in ("id", "user_email")}
        zoom.legacy_update_phone(phone["id"], {**body, "voice_mail": "5000", "register_server3": "10.0.0.3",
                                               "proxy_server3": "10.0.0.3"})
        (listed,) = zoom.legacy_iter_phones()
        assert listed["voice_mail"] == "5000" and listed["register_server3"] == "10.0.0.3"

        zoom.legacy_delete_phone(phone["id"])
        assert list(zoom.legacy_iter_phones()) == []


def test_current_set_create_update_delete_and_one_store(account, base_url):
    with client_for(account, base_url) as zoom:
        created = zoom.create_phone({"user_email": EMAIL, "user_name": "1001", "authorization_name": "alice",
                                     "password": "pw", "domain": "sip.example.com",
                                     "server": {"register_server": "10.0.0.1", "transport_protocol": "TLS"}})
        assert created["phone_id"] and created["server"]["transport_protocol"] == "TLS"
        zoom.update_phone(created["phone_id"], {"display_number": "+15550100"})
        (listed,) = zoom.iter_phones()
        assert listed["display_number"] == "+15550100"
        # the same phone through the legacy set
        assert [p["id"] for p in zoom.legacy_iter_phones()] == [created["phone_id"]]
        zoom.delete_phone(created["phone_id"])
        assert zoom.list_phones()["phones"] == []


def test_iterators_follow_next_page_token(account, base_url, api_admin):
    for i in range(6):
        api_admin.add_user(account.account_id, f"user{i}@example.com")
    with client_for(account, base_url) as zoom:
        ids = [zoom.legacy_create_phone(legacy_fields(f"user{i}@example.com"))["id"] for i in range(6)]
        first = zoom.list_phones(page_size=4)
        assert len(first["phones"]) == 4 and first["next_page_token"]
        assert [p["phone_id"] for p in zoom.iter_phones(page_size=4)] == ids
        assert [p["id"] for p in zoom.legacy_iter_phones(page_size=2)] == ids
        assert [p["id"] for p in zoom.legacy_iter_phones(page_size=2, search_key="user3@example.com")] == [ids[3]]
        emails = [u["email"] for u in zoom.iter_users(page_size=3)]
        assert len(emails) == 8 and "user5@example.com" in emails
        with pytest.raises(SipPhonesError, match="max_pages=2"):
            list(zoom.iter_phones(page_size=2, max_pages=2))


def test_users_create_list_delete(account, base_url):
    with client_for(account, base_url) as zoom:
        user = zoom.create_user("carol@example.com", first_name="Carol", last_name="C")
        assert user["email"] == "carol@example.com" and user["id"]
        assert "carol@example.com" in [u["email"] for u in zoom.list_users()["users"]]
        with pytest.raises(ZoomAPIError) as dup:
            zoom.create_user("carol@example.com")
        assert (dup.value.status_code, dup.value.code) == (409, 1005)
        zoom.delete_user(user["id"])
        assert "carol@example.com" not in [u["email"] for u in zoom.iter_users()]


def test_zoom_errors_are_typed_with_field_errors(account, base_url):
    with client_for(account, base_url) as zoom:
        with pytest.raises(ZoomAPIError) as bad:
            zoom.legacy_create_phone(legacy_fields(password=None, registration_expire_time=500))
        e = bad.value
        assert (e.status_code, e.code, e.message) == (400, 300, "Validation Failed.")
        assert {f.field for f in e.errors} == {"password", "registration_expire_time"}
        assert "password" in str(e) and "registration_expire_time" in str(e) and e.tracking_id
        with pytest.raises(ZoomAPIError) as missing:
            zoom.delete_phone("NoSuchPhone")
        assert (missing.value.status_code, missing.value.code) == (404, 2305)
        with pytest.raises(ZoomAPIError) as unknown_user:
            zoom.legacy_create_phone(legacy_fields("nobody@example.com"))
        assert (unknown_user.value.status_code, unknown_user.value.code) == (404, 1001)


def test_environment_variables_configure_the_client(zoom_env):
    with SipPhonesClient() as zoom:
        assert zoom.list_phones()["phones"] == []


def test_wrong_secret_is_an_authentication_error(account, base_url):
    with client_for(Credentials(account.account_id, account.client_id, "wrong"), base_url) as zoom:
        with pytest.raises(AuthenticationError) as e:
            zoom.list_phones()
    assert (e.value.status_code, e.value.code) == (401, 4704)


def test_missing_credentials_are_refused_before_any_request(monkeypatch):
    for name in ("ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET", "ZOOM_API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="ZOOM_CLIENT_SECRET"):
        SipPhonesClient("acc", "id")
    with pytest.raises(ConfigurationError, match="base_url"):
        SipPhonesClient("acc", "id", "secret", base_url="ftp://example.com")
    with pytest.raises(ConfigurationError, match="max_retries"):
        SipPhonesClient("acc", "id", "secret", max_retries=-1)
    with pytest.raises(ConfigurationError, match="page_size"):
        SipPhonesClient("acc", "id", "secret").list_phones(page_size=301)


def test_free_plan_429s_are_waited_out_until_every_phone_is_created(free_account, base_url, api_admin):
    """Issue 12: 12 creates at once on the free plan (4 a second) all succeed; the client waited."""
    emails = [f"free{i}@example.com" for i in range(12)]
    for email in emails:
        api_admin.add_user(free_account.account_id, email)
    events: list[RetryEvent] = []
    started = time.monotonic()
    with client_for(free_account, base_url, on_retry=events.append) as zoom:
        created = [zoom.legacy_create_phone(legacy_fields(email)) for email in emails]
    elapsed = time.monotonic() - started
    assert len({p["id"] for p in created}) == 12
    # 4 pass in a second, so 12 sent back to back meet the limit: at least one 429 was waited out
    # (how many depends on how fast the machine sends them; on an idle one, 2 or more).
    assert len(events) >= 1 and all(e.reason == "429" for e in events)
    assert all(e.reason == "429" and e.method == "POST" and 1.0 <= e.wait <= 1.2 for e in events)
    assert elapsed >= 1.0 * (len(events) > 0)
    assert all(isinstance(e.error, RateLimitError) and e.error.retry_after == 1.0 for e in events)


def test_free_plan_429_raises_rate_limit_error_when_retries_are_used_up(free_account, base_url, api_admin):
    for i in range(5):
        api_admin.add_user(free_account.account_id, f"quick{i}@example.com")
    with client_for(free_account, base_url, max_retries=0) as zoom:
        with pytest.raises(RateLimitError) as e:
            for i in range(5):  # the 5th in the same second is refused (or the 4th, on a window edge)
                zoom.legacy_create_phone(legacy_fields(f"quick{i}@example.com"))
    assert (e.value.status_code, e.value.code, e.value.retry_after) == (429, 429, 1.0)


def test_a_rejected_token_is_replaced_once_and_the_call_retried(account, tmp_path_factory):
    """The server restarts with a new master key: the cached token no longer verifies (401, 124)."""
    data = tmp_path_factory.mktemp("rotate")
    port = free_port()
    first = start_server(f"sqlite:///{data / 'db.sqlite'}", data, port=port,
                         extra_env={"SIPPHONES_SECRET_KEY": "A" * 43 + "="})
    from tests.servers import Admin
    creds = Admin(first.database_url, data).account()
    try:
        zoom = client_for(creds, first.base_url + "/v2")
        assert zoom.list_phones()["phones"] == []  # a token is cached
    finally:
        first.stop()
    second = start_server(first.database_url, data, port=port, extra_env={"SIPPHONES_SECRET_KEY": "B" * 43 + "="})
    try:
        with zoom:
            assert zoom.list_phones()["phones"] == []
    finally:
        second.stop()


class SilentServer:
    """A TCP listener that reads requests and never answers: what a hung server looks like
    (our service cannot be made to hang on purpose). Counts the requests it received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            while data := conn.recv(65536):
                self.requests += data.count(b"HTTP/1.1\r\n")
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self._conns:
            c.close()


@pytest.fixture
def silent():
    s = SilentServer()
    yield s
    s.close()


def test_a_post_that_may_have_arrived_is_not_retried_but_a_get_is(account, api_server, silent):
    """Read timeouts: the create is sent once (it may have happened); the list is retried."""
    events: list[RetryEvent] = []
    zoom = SipPhonesClient(account.account_id, account.client_id, account.client_secret,
                           base_url=f"http://127.0.0.1:{silent.port}/v2", token_url=api_server.base_url + "/oauth/token",
                           timeout=0.3, max_retries=2, on_retry=events.append)
    with zoom:
        with pytest.raises(TransportError) as post:
            zoom.legacy_create_phone(legacy_fields())
        assert post.value.maybe_delivered and silent.requests == 1 and events == []
        with pytest.raises(TransportError):
            zoom.list_phones()
    assert silent.requests == 1 + 3 and [e.reason for e in events] == ["transport", "transport"]


def test_connection_refused_is_retried_then_a_transport_error(account):
    events: list[RetryEvent] = []
    port = free_port()  # nothing listens there
    with SipPhonesClient(account.account_id, account.client_id, account.client_secret,
                         base_url=f"http://127.0.0.1:{port}/v2", max_retries=2, on_retry=events.append) as zoom:
        with pytest.raises(TransportError) as e:
            zoom.legacy_create_phone(legacy_fields())  # a POST too: it never left
    assert not e.value.maybe_delivered and len(events) == 2
    assert all(ev.method == "TOKEN" for ev in events)  # the token request was the one refused


def test_async_client_does_the_same(account, base_url, api_admin):
    api_admin.add_user(account.account_id, "async@example.com")

    async def go():
        async with AsyncSipPhonesClient(account.account_id, account.client_id, account.client_secret,
                                        base_url=base_url) as zoom:
            created = await asyncio.gather(zoom.legacy_create_phone(legacy_fields()),
                                           zoom.legacy_create_phone(legacy_fields("async@example.com")))
            listed = [p["phone_id"] async for p in zoom.iter_phones(page_size=1)]
            assert sorted(listed) == sorted(p["id"] for p in created)
            await zoom.update_phone(created[0]["id"], {"voice_mail": "7000"})
            await zoom.legacy_delete_phone(created[1]["id"])
            page = await zoom.legacy_list_phones()
            assert [(p["id"], p["voice_mail"]) for p in page["phones"]] == [(created[0]["id"], "7000")]
            with pytest.raises(ZoomAPIError) as e:
                await zoom.delete_phone("NoSuchPhone")
            assert e.value.code == 2305
    asyncio.run(go())


def test_async_client_waits_out_429s(free_account, base_url, api_admin):
    emails = [f"afree{i}@example.com" for i in range(8)]
    for email in emails:
        api_admin.add_user(free_account.account_id, email)
    events: list[RetryEvent] = []

    async def go():
        async with AsyncSipPhonesClient(free_account.account_id, free_account.client_id, free_account.client_secret,
                                        base_url=base_url, on_retry=events.append) as zoom:
            return await asyncio.gather(*(zoom.legacy_create_phone(legacy_fields(e)) for e in emails))
    created = asyncio.run(go())
    assert len({p["id"] for p in created}) == 8
    # 8 at once against 4 a second: some were refused and waited out (4 when all 8 arrive within one
    # second, fewer when a loaded machine spreads them over two).
    assert len(events) >= 1 and all(e.reason == "429" for e in events)
