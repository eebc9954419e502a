"""``AsyncSipPhonesClient``: the asyncio client (httpx.AsyncClient), ``_sync.py``'s twin line
for line; what they share (calls, answers, retry rules, token cache) lives in ``_core``,
``_retry`` and ``_auth``."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

import httpx
import tenacity

from sipphones.client import _core, _transport
from sipphones.client._core import Call, CallState, Core, Pages
from sipphones.client._retry import TOKEN_METHOD, RetryEvent
from sipphones.client.models import (
    CreatedUser, CurrentPhone, CurrentPhoneFields, CurrentPhonePage, LegacyPhone, LegacyPhoneFields, LegacyPhonePage,
    PhoneStatus, PhoneStatusPage, User, UserPage,
)


class AsyncSipPhonesClient:
    """Zoom's SIP phone API (and ours) over Server-to-Server OAuth, for asyncio.

    ``account_id``, ``client_id``, ``client_secret`` and ``base_url`` default to the environment
    variables ``ZOOM_ACCOUNT_ID``, ``ZOOM_CLIENT_ID``, ``ZOOM_CLIENT_SECRET`` and
    ``ZOOM_API_BASE_URL``, then to Zoom's ``https://api.zoom.us/v2``. The token URL follows the
    base URL's host (``http://127.0.0.1:8000/v2`` -> ``http://127.0.0.1:8000/oauth/token``; Zoom's
    API host -> ``https://zoom.us/oauth/token``) unless ``token_url`` is given.

    ``timeout``: seconds per request (or an ``httpx.Timeout``). ``max_retries``: retries of one
    call (429, connection failures, and for GET/PATCH/DELETE also read failures and 502/503/504);
    ``max_retry_after``: the longest ``Retry-After`` waited for. ``on_retry``: called with a
    ``RetryEvent`` before each wait. ``transport``: an httpx transport to send through (default:
    aiohttp's connection pool, which keeps its speed with many requests in flight; see
    ``_transport``). Use it as an async context manager, or await ``aclose()``.
    """

    def __init__(self, account_id: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None, *, base_url: str | None = None, token_url: str | None = None,
                 timeout: float | httpx.Timeout | None = _core.DEFAULT_TIMEOUT, max_retries: int = 5,
                 max_retry_after: float = 60.0, on_retry: Callable[[RetryEvent], Any] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None):
        self._core = Core.configure(account_id=account_id, client_id=client_id, client_secret=client_secret,
                                    base_url=base_url, token_url=token_url, timeout=timeout,
                                    max_retries=max_retries, max_retry_after=max_retry_after, on_retry=on_retry)
        options = self._core.http_options()
        self._http = httpx.AsyncClient(transport=transport or _transport.async_transport(options["limits"]),
                                       **options)
        self._token_lock = asyncio.Lock()

    @property
    def base_url(self) -> str:
        return self._core.base_url

    async def __aenter__(self) -> "AsyncSipPhonesClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- legacy set: /sip_phones ----------------------------------------------------------

    async def legacy_list_phones(self, *, page_size: int | None = None, next_page_token: str | None = None,
                           search_key: str | None = None, page_number: int | None = None) -> LegacyPhonePage:
        """One page of ``GET /sip_phones``."""
        return await self._call(_core.legacy_list(page_size, next_page_token, search_key, page_number))

    def legacy_iter_phones(self, *, page_size: int = _core.MAX_PAGE_SIZE, search_key: str | None = None,
                           max_pages: int = _core.DEFAULT_MAX_PAGES) -> AsyncIterator[LegacyPhone]:
        """Every phone of ``GET /sip_phones``, page after page."""
        return self._iterate(Pages(_core.legacy_list(page_size, None, search_key), "phones", max_pages))

    async def legacy_create_phone(self, fields: LegacyPhoneFields | Mapping[str, Any]) -> LegacyPhone:
        """``POST /sip_phones``; returns the created phone (with its ``id``)."""
        return await self._call(_core.legacy_create(fields))

    async def legacy_update_phone(self, phone_id: str, fields: LegacyPhoneFields | Mapping[str, Any]) -> None:
        """``PATCH /sip_phones/{phone_id}`` (a near-full replace: see ``LegacyPhoneFields``)."""
        await self._call(_core.legacy_update(phone_id, fields))

    async def legacy_delete_phone(self, phone_id: str) -> None:
        """``DELETE /sip_phones/{phone_id}``."""
        await self._call(_core.legacy_delete(phone_id))

    # --- current set: /sip_phones/phones --------------------------------------------------

    async def list_phones(self, *, page_size: int | None = None, next_page_token: str | None = None,
                    search_key: str | None = None) -> CurrentPhonePage:
        """One page of ``GET /sip_phones/phones``."""
        return await self._call(_core.current_list(page_size, next_page_token, search_key))

    def iter_phones(self, *, page_size: int = _core.MAX_PAGE_SIZE, search_key: str | None = None,
                    max_pages: int = _core.DEFAULT_MAX_PAGES) -> AsyncIterator[CurrentPhone]:
        """Every phone of ``GET /sip_phones/phones``, page after page."""
        return self._iterate(Pages(_core.current_list(page_size, None, search_key), "phones", max_pages))

    async def create_phone(self, fields: CurrentPhoneFields | Mapping[str, Any]) -> CurrentPhone:
        """``POST /sip_phones/phones``; returns the created phone (with its ``phone_id``)."""
        return await self._call(_core.current_create(fields))

    async def update_phone(self, phone_id: str, fields: CurrentPhoneFields | Mapping[str, Any]) -> None:
        """``PATCH /sip_phones/phones/{phone_id}``: only the fields given change."""
        await self._call(_core.current_update(phone_id, fields))

    async def delete_phone(self, phone_id: str) -> None:
        """``DELETE /sip_phones/phones/{phone_id}``."""
        await self._call(_core.current_delete(phone_id))

    # --- users ----------------------------------------------------------------------------

    async def list_users(self, *, page_size: int | None = None, next_page_token: str | None = None) -> UserPage:
        """One page of ``GET /users``."""
        return await self._call(_core.users_list(page_size, next_page_token))

    def iter_users(self, *, page_size: int = _core.MAX_PAGE_SIZE,
                   max_pages: int = _core.DEFAULT_MAX_PAGES) -> AsyncIterator[User]:
        """Every user of ``GET /users``, page after page."""
        return self._iterate(Pages(_core.users_list(page_size, None), "users", max_pages))

    async def create_user(self, email: str, *, first_name: str = "", last_name: str = "", type: int = 1,
                    action: str = "create") -> CreatedUser:
        """``POST /users``."""
        return await self._call(_core.users_create(email, first_name, last_name, type, action))

    async def delete_user(self, user_id: str) -> None:
        """``DELETE /users/{user_id}`` (an id or an email)."""
        await self._call(_core.users_delete(user_id))

    # --- sipphones extensions (not Zoom's API) --------------------------------------------

    async def list_phone_statuses(self, *, state: str | Sequence[str] | None = None,
                                  page_size: int | None = None,
                                  next_page_token: str | None = None) -> PhoneStatusPage:
        """One page of ``GET /_sipphones/v1/sip_phones/status`` (on the base URL's host root): the
        account's phones with the registration status the monitor recorded; ``state``: only
        these states (``"failed"``, ``["failed", "invalid"]``)."""
        call = _core.status_list(state, page_size, next_page_token)
        self._core.url(call)  # Zoom's API has no such endpoint: say so before fetching a token
        return await self._call(call)

    def iter_phone_statuses(self, *, state: str | Sequence[str] | None = None, page_size: int = _core.MAX_PAGE_SIZE,
                            max_pages: int = _core.DEFAULT_MAX_PAGES) -> AsyncIterator[PhoneStatus]:
        """Every phone of ``GET /_sipphones/v1/sip_phones/status``, page after page."""
        call = _core.status_list(state, page_size, None)
        self._core.url(call)
        return self._iterate(Pages(call, "phones", max_pages))

    # --- machinery ------------------------------------------------------------------------

    async def _iterate(self, pages: Pages) -> AsyncIterator[Any]:
        call: Call | None = pages.first
        while call is not None:
            page = await self._call(call)
            for item in pages.items(page):
                yield item
            call = pages.next_call(page)

    async def _call(self, call: Call) -> Any:
        state = CallState(call)
        async for attempt in tenacity.AsyncRetrying(**self._core.retrying(state)):
            with attempt:
                return await self._attempt(state)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _attempt(self, state: CallState) -> Any:
        state.step = state.call.method
        while True:  # twice at most: a second rejected token raises
            token = await self._token(state)
            response, body = await self._send(self._core.api_request(self._http, state.call, token))
            if not self._core.token_rejected(response):
                return self._core.result(response, body)
            self._core.rejected(state, token, response, body)

    async def _token(self, state: CallState) -> str:
        token = self._core.tokens.current()
        if token is not None:
            return token
        async with self._token_lock:  # one fetch for the tasks that need a token at the same time
            token = self._core.tokens.current()
            if token is not None:
                return token
            state.step = TOKEN_METHOD
            response, body = await self._send(self._core.token_request(self._http))
            token = self._core.token_result(response, body)
            state.step = state.call.method
            return token

    async def _send(self, request: httpx.Request) -> tuple[httpx.Response, bytes]:
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as e:
            raise self._core.transport_error(e, _transport.never_sent(e)) from e
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._core.max_response_bytes:
                    raise self._core.too_large()
            return response, bytes(body)
        except httpx.TransportError as e:
            raise self._core.transport_error(e, _transport.never_sent(e)) from e
        finally:
            await response.aclose()
