"""The one thing an application may do to its connection beyond answering: drop it.

ASGI has no message for "close the connection without an answer" (an application that raises
before answering gets a 500 from the server). ``sipphones serve``'s HTTP protocol
(``sipphones.api.http_protocol``) sets :data:`DROP_CONNECTION` to its connection's ``drop``
before it hands received bytes to uvicorn's protocol; the request task uvicorn starts in that call
copies the context, so the request's code reads its own connection's ``drop`` here. Anywhere else
(another server, ``httpx.ASGITransport``) it is None.

Only the emulator's ``drop`` fault rule uses it (``sipphones.api.emulator_wire``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Callable

DROP_CONNECTION: ContextVar[Callable[[], None] | None] = ContextVar("sipphones_drop_connection", default=None)
