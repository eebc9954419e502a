"""asyncio side of the SIP engine: transports (UDP, TCP, TLS), RFC 3263 server location, and the
driver that runs the sans-IO registration machine of ``sipphones.sip`` over them."""

from sipphones._mypyc import ensure_fresh as _ensure_fresh

_ensure_fresh(__name__, __path__[0])  # a compiled module older than its source must not run
