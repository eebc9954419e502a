"""The emulator's wire: the request journal and the fault rules around the Zoom app (ASGI).

Only in emulator mode (``create_app`` puts it in front of the app's dispatch there), and only for
Zoom paths (``/v2/...`` and ``/oauth/...``): the control plane, the docs and the health check pass
untouched and are never journaled.

For each Zoom-path request:

1. the account it is made for: the account of its access token (signature checked, expiry not:
   an expired token's request still belongs to its account), or the ``account_id`` of a token
   request (query string, or form body: that body is read first, within a bound, and handed on);
2. a fault rule may apply (``sipphones.emulator.faults``): it waits its delay, then answers its
   status with Zoom's body, a malformed body, drops the connection, or (``delay``) lets the
   request through;
3. the request and the answer as sent are captured (bodies up to the journal's bound per entry)
   and recorded in the journal, masked there.

Dropping a connection needs the server's help (ASGI cannot say it): under ``sipphones serve`` the
connection is aborted (``sipphones.api.connection``): the client sees the connection closed
without an answer. Without a server (``httpx.ASGITransport``, the in-process mode) the wire raises
what httpx raises for that over a socket, ``httpx.RemoteProtocolError("Server disconnected
without sending a response.")``, so that the caller sees the same error either way.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Callable, Protocol

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sipphones.api.connection import DROP_CONNECTION
from sipphones.api.responses import error_response
from sipphones.emulator.faults import MALFORMED_BODY, Fault, FaultRules
from sipphones.emulator.journal import Exchange, Journal

ZOOM_PREFIXES = ("/v2/", "/oauth/")
TOKEN_PATH = "/oauth/token"
MAX_PREREAD = 65_536       # a token request's form body read to find its account_id
MAX_DRAIN = 1_048_576      # a faulted request's body read (for the journal) before the fault answers
DROP_WAIT = 1.0            # seconds to wait for the server to notice a dropped connection


class EmulatorParts(Protocol):
    journal: Journal
    faults: FaultRules


class EmulatorWire:
    """ASGI middleware: ``app`` with the journal and the fault rules of ``parts()`` (None: the
    app alone; called per request, as the parts exist only once the app has started).
    ``account_of_token(token)``: the account of a valid access token (expired or not), else None."""

    def __init__(self, app: ASGIApp, parts: Callable[[], EmulatorParts | None],
                 account_of_token: Callable[[str], str | None]):
        self.app = app
        self.parts = parts
        self.account_of_token = account_of_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(ZOOM_PREFIXES):
            await self.app(scope, receive, send)
            return
        parts = self.parts()
        if parts is None:
            await self.app(scope, receive, send)
            return
        await _Request(self, parts, scope, receive, send).run()


class _Request:
    """One Zoom-path request through the wire."""

    def __init__(self, wire: EmulatorWire, parts: EmulatorParts, scope: Scope, receive: Receive, send: Send):
        self.wire = wire
        self.journal = parts.journal
        self.faults = parts.faults
        self.scope = scope
        self.receive_from = receive
        self.send_to = send
        self.recording = self.journal.enabled
        self.cap = self.journal.max_entry_bytes
        self.replay: list[Message] = []          # messages read ahead, handed to the app first
        self.request_chunks: list[bytes] = []
        self.request_size = 0
        self.status: int | None = None
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.response_chunks: list[bytes] = []
        self.response_size = 0

    async def run(self) -> None:
        scope = self.scope
        started, clock = self.journal.now(), time.perf_counter()
        account = await self.account()
        fault = self.faults.pick(scope["method"], scope["path"], account)
        try:
            if fault is None:
                await self.wire.app(scope, self.receive, self.send)
            else:
                await self.apply(fault)
        finally:
            if self.recording:
                self.journal.record(Exchange(
                    scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"), account,
                    scope["headers"], b"".join(self.request_chunks), self.status, self.response_headers,
                    b"".join(self.response_chunks), started, time.perf_counter() - clock,
                    None if fault is None else fault.rule.id, self.request_size, self.response_size))

    # --- the account ---------------------------------------------------------------------------

    async def account(self) -> str | None:
        headers = self.scope["headers"]
        content_type = b""
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return self.wire.account_of_token(token.strip())
            elif name == b"content-type":
                content_type = value
        if self.scope["path"] != TOKEN_PATH:
            return None
        found = _form_value(self.scope.get("query_string", b""), b"account_id")
        if found is None and content_type.startswith(b"application/x-www-form-urlencoded"):
            found = _form_value(await self.read_ahead(MAX_PREREAD), b"account_id")
        return found

    # --- the request's body: read ahead (then handed on), captured --------------------------------

    async def read_ahead(self, limit: int) -> bytes:
        """Reads the body (up to ``limit`` bytes, then stops) and keeps the messages for the app."""
        size = 0
        chunks = []
        while size <= limit:
            message = await self.receive_from()
            self.replay.append(message)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def receive(self) -> Message:
        message = self.replay.pop(0) if self.replay else await self.receive_from()
        if self.recording and message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                if self.request_size < self.cap:
                    self.request_chunks.append(chunk[:self.cap - self.request_size])
                self.request_size += len(chunk)
        return message

    async def drain(self) -> None:
        """Reads the body (up to ``MAX_DRAIN`` bytes), for the journal, before a fault answers."""
        while self.request_size <= MAX_DRAIN:
            message = await self.receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    # --- the answer, captured ------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self.recording:
            kind = message["type"]
            if kind == "http.response.start":
                self.status = message["status"]
                self.response_headers = message.get("headers", [])   # not changed once sent
            elif kind == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    if self.response_size < self.cap:
                        self.response_chunks.append(chunk[:self.cap - self.response_size])
                    self.response_size += len(chunk)
        else:
            if message["type"] == "http.response.start":
                self.status = message["status"]
        await self.send_to(message)

    # --- faults --------------------------------------------------------------------------------

    async def apply(self, fault: Fault) -> None:
        rule = fault.rule
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if rule.action == "delay":
            await self.wire.app(self.scope, self.receive, self.send)
            return
        if rule.action == "drop":
            await self.drop()
            return
        await self.drain()
        if rule.action == "status":
            response = error_response(rule.error())
            await self.send({"type": "http.response.start", "status": response.status_code,
                             "headers": response.raw_headers})
            await self.send({"type": "http.response.body", "body": response.body})
        else:   # malformed
            assert rule.status is not None
            await self.send({"type": "http.response.start", "status": rule.status, "headers": [
                (b"x-zm-trackingid", os.urandom(12).hex().encode()), (b"content-type", b"application/json"),
                (b"content-length", str(len(MALFORMED_BODY)).encode())]})
            await self.send({"type": "http.response.body", "body": MALFORMED_BODY})

    async def drop(self) -> None:
        drop = DROP_CONNECTION.get()
        if drop is None:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        drop()
        # Return once the server knows (else it would answer a 500 to a request it still thinks open).
        try:
            async with asyncio.timeout(DROP_WAIT):
                while (await self.receive_from())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            pass


def _form_value(encoded: bytes, name: bytes) -> str | None:
    """The first value of ``name`` in an ``application/x-www-form-urlencoded`` text, decoded."""
    from urllib.parse import unquote_plus

    for pair in encoded.split(b"&", 1000)[:1000]:
        key, sep, value = pair.partition(b"=")
        if unquote_plus(key.decode("latin-1")) == name.decode():
            text = unquote_plus(value.decode("latin-1"), encoding="utf-8", errors="replace")
            return text[:128] or None
    return None
