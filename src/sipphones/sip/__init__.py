"""Sans-IO SIP core: messages, digest, the non-INVITE client transaction and the registration
state machine. Nothing in this package opens a socket, starts a task or reads a clock: bytes and
the current time come in, bytes and timer requests go out (the style of ``h11``).
"""

from sipphones.sip.freshness import ensure_fresh as _ensure_fresh

_ensure_fresh(__name__, __path__[0])  # a compiled module older than its source must not run
