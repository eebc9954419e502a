"""The async client's HTTP transport: httpx's API on aiohttp's connection pool (``httpx-aiohttp``).

Why: httpx's own async pool (httpcore) slows down as requests in flight grow (encode/httpx#3215):
measured here, an import through it ran 519 rows/s with 8 requests in flight and 202 rows/s
with 32. aiohttp's pool does not; the client keeps httpx's API (requests, responses, timeouts,
errors), only the sockets are aiohttp's. See bench/README.md ("CSV import").

One difference needs translating: httpx-aiohttp maps every ``aiohttp.ClientConnectionError``,
including a server that closed the connection after the request went out, to
``httpx.ConnectTimeout``, which would say "never sent" and let a POST be retried (a second
create). ``never_sent`` looks at the aiohttp error underneath instead: only a connection that
could not be opened (or a free one not had in time) means the request was not sent.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

# Errors of httpx's own transport that mean the request never left (used when the error did not
# come through aiohttp: a proxy mounted from the environment runs on httpcore).
_HTTPX_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# aiohttp: the connection could not be made (refused, DNS, TLS), or none was free in time.
_AIOHTTP_NEVER_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def async_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """The transport of ``AsyncSipPhonesClient``: aiohttp's pool with ``limits`` (its session is
    made on first use, inside the running event loop, and closed with the client)."""
    return AiohttpTransport(limits=limits)


def never_sent(error: httpx.TransportError) -> bool:
    """Whether the request of this failure certainly did not reach the service."""
    cause = error.__cause__
    if isinstance(cause, aiohttp.ClientError):
        return isinstance(cause, _AIOHTTP_NEVER_SENT)
    return isinstance(error, _HTTPX_NEVER_SENT)
