"""What the sync and the async client share: options, the calls (method, path, query, body),
answers into results or typed errors, and the page loop's rules. No I/O here."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from sipphones.client._auth import TokenCache
from sipphones.client._retry import RetryEvent, RetryPolicy, parse_retry_after
from sipphones.client.errors import (
    AuthenticationError, ConfigurationError, FieldError, RateLimitError, SipPhonesError, TransportError, ZoomAPIError,
)

ZOOM_API_BASE_URL = "https://api.zoom.us/v2"
ZOOM_TOKEN_URL = "https://zoom.us/oauth/token"
ENV_ACCOUNT_ID, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_BASE_URL = (
    "ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET", "ZOOM_API_BASE_URL")
DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # a page of 300 phones is ~150 KB
MAX_PAGE_SIZE = 300                    # Zoom's (and our service's) largest page
MAX_ID_LENGTH = 256                    # phone and user ids in paths
DEFAULT_MAX_PAGES = 100_000            # the page iterators stop (with an error) past this
USER_AGENT = "sipphones-client/0.1"
# Connections kept open: as many as requests in flight (an import sends up to 64 at once), so
# none is closed after each answer and opened again (httpx keeps 20 by default).
HTTP_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=64)


@dataclass(frozen=True)
class Call:
    method: str
    path: str                           # below the base URL, e.g. "/sip_phones"
    params: Mapping[str, Any] | None = None
    body: Any = None
    extension: bool = False             # a sipphones extension: ``path`` is below the service root


@dataclass
class CallState:
    """One call across its attempts: ``step`` is the method whose retry rules apply to a failure
    now (``TOKEN`` while the token is being fetched), ``refreshed`` whether a rejected token was
    already replaced once."""

    call: Call
    step: str = ""
    refreshed: bool = False

    def __post_init__(self) -> None:
        self.step = self.call.method


def token_url_for(base_url: str) -> str:
    """Zoom's token URL for Zoom's API host; otherwise ``/oauth/token`` on the base URL's host
    (``http://127.0.0.1:8000/v2`` -> ``http://127.0.0.1:8000/oauth/token``)."""
    parts = urlsplit(base_url)
    if parts.hostname == "api.zoom.us":
        return ZOOM_TOKEN_URL
    return urlunsplit((parts.scheme, parts.netloc, "/oauth/token", "", ""))


def service_root_for(base_url: str) -> str:
    """Where this service's own extensions (``/_sipphones/v1/...``) live: the root of the base
    URL's host, as the token URL (``http://127.0.0.1:8000/v2`` -> ``http://127.0.0.1:8000``)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _check_url(name: str, url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise ConfigurationError(f"{name} must be an http:// or https:// URL, not {url!r}")
    return url


def _setting(value: str | None, env: str, what: str, required: bool = True) -> str:
    if value is None:
        value = os.environ.get(env, "")
    value = value.strip()
    if required and not value:
        raise ConfigurationError(f"no {what}: pass it or set {env}")
    if len(value) > 1024:
        raise ConfigurationError(f"the {what} is longer than 1024 characters")
    return value


@dataclass
class Core:
    """Options of one client and everything about a call that is not sending it."""

    base_url: str
    tokens: TokenCache
    timeout: httpx.Timeout
    policy: RetryPolicy
    on_retry: Callable[[RetryEvent], Any] | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    headers: dict[str, str] = field(default_factory=lambda: {"User-Agent": USER_AGENT, "Accept": "application/json"})

    @classmethod
    def configure(cls, *, account_id: str | None, client_id: str | None, client_secret: str | None,
                  base_url: str | None, token_url: str | None, timeout: float | httpx.Timeout | None,
                  max_retries: int, max_retry_after: float, on_retry: Callable[[RetryEvent], Any] | None) -> "Core":
        """Arguments first, then ``ZOOM_ACCOUNT_ID``, ``ZOOM_CLIENT_ID``, ``ZOOM_CLIENT_SECRET``,
        ``ZOOM_API_BASE_URL`` (Zoom's own names), then Zoom's defaults."""
        base = _check_url("base_url", _setting(base_url, ENV_BASE_URL, "base URL", required=False) or ZOOM_API_BASE_URL)
        tokens = TokenCache(
            account_id=_setting(account_id, ENV_ACCOUNT_ID, "account id"),
            client_id=_setting(client_id, ENV_CLIENT_ID, "client id"),
            client_secret=_setting(client_secret, ENV_CLIENT_SECRET, "client secret"),
            token_url=_check_url("token_url", token_url) if token_url else token_url_for(base),
        )
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        if not isinstance(timeout, httpx.Timeout):
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
                raise ConfigurationError(f"timeout must be a number of seconds above 0 and at most 3600, not {timeout!r}")
            timeout = httpx.Timeout(float(timeout))
        try:
            policy = RetryPolicy(max_retries=max_retries, max_retry_after=max_retry_after)
        except ValueError as e:
            raise ConfigurationError(str(e)) from None
        return cls(base, tokens, timeout, policy, on_retry)

    def retrying(self, state: CallState) -> dict[str, Any]:
        """Arguments of ``tenacity.Retrying`` / ``AsyncRetrying`` for one call."""
        return self.policy.tenacity_kwargs(lambda: state.step, state.call.path, self.on_retry)

    def http_options(self) -> dict[str, Any]:
        """Options of the ``httpx.Client`` / ``httpx.AsyncClient`` the client makes."""
        return {"timeout": self.timeout, "headers": self.headers, "follow_redirects": False, "limits": HTTP_LIMITS}

    # --- requests -----------------------------------------------------------------------

    def api_request(self, http: httpx.Client | httpx.AsyncClient, call: Call, token: str) -> httpx.Request:
        params = {k: v for k, v in (call.params or {}).items() if v is not None}
        headers = {"Authorization": f"Bearer {token}"}
        kw: dict[str, Any] = {"params": params, "headers": headers}
        if call.body is not None:
            kw["json"] = call.body
        return http.build_request(call.method, self.url(call), **kw)

    def url(self, call: Call) -> str:
        if not call.extension:
            return self.base_url + call.path
        if urlsplit(self.base_url).hostname == "api.zoom.us":
            raise ConfigurationError(f"{call.path} is an extension of sipphones, not part of Zoom's API: "
                                     "point base_url at a sipphones service")
        return service_root_for(self.base_url) + call.path

    def token_request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        url, headers, form = self.tokens.request_parts()
        return http.build_request("POST", url, headers=headers, data=form)

    # --- answers ------------------------------------------------------------------------

    def too_large(self) -> TransportError:
        return TransportError(f"the answer is larger than {self.max_response_bytes} bytes", maybe_delivered=True)

    def result(self, response: httpx.Response, body: bytes) -> Any:
        """The decoded body of a 2xx answer (None when empty); anything else raised as a
        ``ZoomAPIError`` (``RateLimitError`` for 429)."""
        if 200 <= response.status_code < 300:
            if not body:
                return None
            try:
                return json.loads(body)
            except ValueError:
                raise ZoomAPIError(response.status_code, None, "the answer is not JSON",
                                   tracking_id=response.headers.get("x-zm-trackingid")) from None
        raise self.error(response, body)

    def token_result(self, response: httpx.Response, body: bytes) -> str:
        if response.status_code != 200:
            error = self.error(response, body)
            if isinstance(error, RateLimitError) or error.status_code >= 500:
                raise error
            raise AuthenticationError(error.status_code, error.code, error.message, error.errors, error.tracking_id)
        try:
            return self.tokens.accept(json.loads(body))
        except ValueError as e:
            raise AuthenticationError(response.status_code, None, str(e)) from None

    @staticmethod
    def token_rejected(response: httpx.Response) -> bool:
        """HTTP 401 to an API call: the token is invalid or expired (Zoom's code 124)."""
        return response.status_code == 401

    def rejected(self, state: CallState, token: str, response: httpx.Response, body: bytes) -> None:
        """A 401 to an API call: drop the token and let the call try once more with a new one;
        raise ``AuthenticationError`` if the call already had a fresh token."""
        if state.refreshed:
            error = self.error(response, body)
            raise AuthenticationError(error.status_code, error.code, error.message, error.errors, error.tracking_id)
        state.refreshed = True
        self.tokens.invalidate(token)

    def error(self, response: httpx.Response, body: bytes) -> ZoomAPIError:
        status = response.status_code
        tracking = response.headers.get("x-zm-trackingid")
        code: int | None = None
        message = response.reason_phrase or f"HTTP {status}"
        errors: tuple[FieldError, ...] = ()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            if isinstance(data.get("code"), int) and not isinstance(data.get("code"), bool):
                code = data["code"]
            text = data.get("message") or data.get("reason") or data.get("error")
            if isinstance(text, str) and text:
                message = text[:1000]
            if isinstance(data.get("errors"), list):
                errors = tuple(FieldError(str(e.get("field", "")), str(e.get("message", "")))
                               for e in data["errors"][:100] if isinstance(e, dict))
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        kind = RateLimitError if status == 429 else ZoomAPIError
        return kind(status, code, message, errors, tracking, retry_after=retry_after)

    @staticmethod
    def transport_error(error: httpx.TransportError, never_sent: bool | None = None) -> TransportError:
        """httpx's failure as ours, saying whether the request may have reached the service
        (``never_sent``: the transport's own word on that, when it has one)."""
        if never_sent is None:
            never_sent = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        what = type(error).__name__
        detail = " ".join(str(error).split())[:300]
        out = TransportError(f"{what}: {detail}" if detail else what, maybe_delivered=not never_sent)
        out.__cause__ = error
        return out


# --- the calls ----------------------------------------------------------------------------

def _id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise ConfigurationError(f"{what} must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    return quote(value, safe="")  # never a path of its own: "a/../b" stays one segment


def _page_size(size: int | None) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise ConfigurationError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, not {size!r}")
    return size


def _body(fields: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise ConfigurationError("the phone's fields must be a mapping (a dict)")
    return dict(fields)


def legacy_list(page_size: int | None, next_page_token: str | None, search_key: str | None,
                page_number: int | None = None) -> Call:
    return Call("GET", "/sip_phones", {"page_size": _page_size(page_size), "next_page_token": next_page_token or None,
                                       "search_key": search_key, "page_number": page_number})


def legacy_create(fields: Mapping[str, Any]) -> Call:
    return Call("POST", "/sip_phones", body=_body(fields))


def legacy_update(phone_id: str, fields: Mapping[str, Any]) -> Call:
    return Call("PATCH", f"/sip_phones/{_id(phone_id, 'phone_id')}", body=_body(fields))


def legacy_delete(phone_id: str) -> Call:
    return Call("DELETE", f"/sip_phones/{_id(phone_id, 'phone_id')}")


def current_list(page_size: int | None, next_page_token: str | None, search_key: str | None) -> Call:
    return Call("GET", "/sip_phones/phones", {"page_size": _page_size(page_size),
                                              "next_page_token": next_page_token or None, "search_key": search_key})


def current_create(fields: Mapping[str, Any]) -> Call:
    return Call("POST", "/sip_phones/phones", body=_body(fields))


def current_update(phone_id: str, fields: Mapping[str, Any]) -> Call:
    return Call("PATCH", f"/sip_phones/phones/{_id(phone_id, 'phone_id')}", body=_body(fields))


def current_delete(phone_id: str) -> Call:
    return Call("DELETE", f"/sip_phones/phones/{_id(phone_id, 'phone_id')}")


STATUS_PATH = "/_sipphones/v1/sip_phones/status"
MAX_STATE_TEXT = 200


def _states(state: str | Sequence[str] | None) -> str | None:
    if state is None:
        return None
    if isinstance(state, str):
        text = state
    elif isinstance(state, Sequence) and all(isinstance(s, str) for s in state):
        text = ",".join(state)
    else:
        raise ConfigurationError("state must be a string or a sequence of strings")
    if len(text) > MAX_STATE_TEXT:
        raise ConfigurationError(f"state must be at most {MAX_STATE_TEXT} characters")
    return text or None


def status_list(state: str | Sequence[str] | None, page_size: int | None, next_page_token: str | None) -> Call:
    """``GET /_sipphones/v1/sip_phones/status`` (a sipphones extension, on the service root)."""
    return Call("GET", STATUS_PATH, {"state": _states(state), "page_size": _page_size(page_size),
                                     "next_page_token": next_page_token or None}, extension=True)


def users_list(page_size: int | None, next_page_token: str | None, status: str | None = None) -> Call:
    return Call("GET", "/users", {"page_size": _page_size(page_size), "next_page_token": next_page_token or None,
                                  "status": status})


def users_create(email: str, first_name: str, last_name: str, type: int, action: str) -> Call:
    info = {"email": email, "first_name": first_name, "last_name": last_name, "type": type}
    return Call("POST", "/users", body={"action": action, "user_info": info})


def users_delete(user_id: str) -> Call:
    return Call("DELETE", f"/users/{_id(user_id, 'user_id')}")


@dataclass
class Pages:
    """The rules of a page loop: follow ``next_page_token`` until it is empty, refuse a token
    seen before (a server that loops) and stop past ``max_pages``."""

    first: Call
    items_key: str
    max_pages: int = DEFAULT_MAX_PAGES
    _seen: set[str] = field(default_factory=set)
    _count: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.max_pages, bool) or not isinstance(self.max_pages, int) or self.max_pages < 1:
            raise ConfigurationError(f"max_pages must be an integer of 1 or more, not {self.max_pages!r}")

    def items(self, page: Any) -> list[Any]:
        items = page.get(self.items_key) if isinstance(page, dict) else None
        return items if isinstance(items, list) else []

    def next_call(self, page: Any) -> Call | None:
        self._count += 1
        token = page.get("next_page_token") if isinstance(page, dict) else None
        if not token or not isinstance(token, str):
            return None
        if token in self._seen:
            raise SipPhonesError("the service returned a next_page_token it had returned before")
        if self._count >= self.max_pages:
            raise SipPhonesError(f"more than max_pages={self.max_pages} pages; pass a larger max_pages")
        self._seen.add(token)
        params = dict(self.first.params or {})
        params["next_page_token"] = token
        params.pop("page_number", None)
        return dataclasses.replace(self.first, params=params)
