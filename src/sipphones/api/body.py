"""Reading a request body within a limit, at the ASGI level (so under every HTTP protocol).

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a
chunked body (or a lying length) is counted as it arrives and cut off as soon as it passes the
limit. What was read is dropped with the refusal, and ``PayloadTooLarge`` asks for the connection
to be closed, so the rest is never read either.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from sipphones.errors import InvalidHttpRequest, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; ``PayloadTooLarge`` beyond, ``ClientDisconnect``
    when the client went away first."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():            # the HTTP parsers refuse this already: a backstop
            raise InvalidHttpRequest()
        if len(declared) > 18 or int(declared) > limit:
            raise PayloadTooLarge(limit)
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
