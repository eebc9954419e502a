"""The ceiling: a bare ASGI callable answering a small JSON body, no framework at all.

Served by uvicorn with 2 workers, uvloop and httptools, no access log: the same stack and settings
``sipphones serve --workers 2`` uses, so the ratio "endpoint req/s / bare req/s" isolates what the
service adds on top of the HTTP server (framework, auth, rate limiter, validation, database, JSON).
This is the app of the reference figures (``shared/reference/peer-anchors.md`` §3).
"""

BODY = b'{"status":"ok","service":"hello"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
