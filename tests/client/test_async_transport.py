"""The async client on its aiohttp transport: a failure is "maybe delivered" exactly when the
request may have reached the service, whatever aiohttp's error is called (httpx-aiohttp maps a
server that hung up after the request to ``httpx.ConnectTimeout``, which alone would let a POST
be sent twice)."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from sipphones.client import AsyncSipPhonesClient, RetryEvent, TransportError
from tests.client.fixtures import legacy_fields
from tests.servers import free_port


class HangUpServer:
    """Reads each request, then closes the connection without an answer."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    if b"HTTP/1.1\r\n" in conn.recv(65536):
                        self.requests += 1
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def hang_up():
    s = HangUpServer()
    yield s
    s.close()


def _client(account, base_url: str, token_url: str | None, events: list) -> AsyncSipPhonesClient:
    return AsyncSipPhonesClient(account.account_id, account.client_id, account.client_secret, base_url=base_url,
                                token_url=token_url, timeout=5, max_retries=2, on_retry=events.append)


def test_a_post_the_server_hung_up_on_is_maybe_delivered_and_sent_once_a_get_is_retried(account, api_server, hang_up):
    events: list[RetryEvent] = []

    async def go():
        async with _client(account, f"http://127.0.0.1:{hang_up.port}/v2", api_server.base_url + "/oauth/token",
                           events) as zoom:
            with pytest.raises(TransportError) as post:
                await zoom.create_phone(legacy_fields())
            assert post.value.maybe_delivered and hang_up.requests == 1 and events == []
            with pytest.raises(TransportError) as get:
                await zoom.list_phones()
            assert get.value.maybe_delivered
    asyncio.run(go())
    # The GET: 3 attempts (2 retries); aiohttp itself sends an idempotent request once more when the
    # connection drops, so each attempt is 1 or 2 requests.
    assert 1 + 3 <= hang_up.requests <= 1 + 6 and [e.reason for e in events] == ["transport", "transport"]


def test_connection_refused_is_never_sent_and_retried(account):
    events: list[RetryEvent] = []
    port = free_port()  # nothing listens there

    async def go():
        async with _client(account, f"http://127.0.0.1:{port}/v2", None, events) as zoom:
            with pytest.raises(TransportError) as e:
                await zoom.create_phone(legacy_fields())
            return e.value
    error = asyncio.run(go())
    assert not error.maybe_delivered and len(events) == 2 and all(ev.method == "TOKEN" for ev in events)
