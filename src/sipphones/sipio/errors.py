"""Typed transport failures, each with a stable ``kind`` word that reports and metrics use.

They are raised (connecting) or delivered to listeners (a flow that breaks later); nothing in
``sipio`` lets a bare ``OSError`` or ``ssl.SSLError`` reach the registration driver.
"""

from __future__ import annotations

from sipphones.sip.config import Target


class TransportError(Exception):
    """A target could not be reached or a flow to it broke."""

    kind = "transport_error"

    def __init__(self, target: Target | None, detail: str):
        self.target = target
        self.detail = detail
        where = f"{target}: " if target is not None else ""
        super().__init__(f"{where}{detail}")


class ConnectionRefused(TransportError):
    """TCP RST on connect, or ICMP port-unreachable for a UDP datagram."""

    kind = "connection_refused"


class ConnectTimeout(TransportError):
    """The TCP connection (or TLS handshake) did not complete in time."""

    kind = "timeout"


class TlsError(TransportError):
    """The TLS handshake failed: an untrusted or expired certificate, a host-name mismatch, or
    a protocol failure. ``reason`` is OpenSSL's short verification text when there is one."""

    kind = "tls_error"

    def __init__(self, target: Target | None, detail: str, reason: str | None = None):
        self.reason = reason
        super().__init__(target, detail)


class ConnectionLost(TransportError):
    """An established TCP/TLS connection closed or reset, or stopped answering keep-alives."""

    kind = "connection_lost"


class ProtocolError(TransportError):
    """The peer sent bytes that are not a valid SIP message (garbage, a message over the size
    limits): on a stream this breaks the framing, so the connection is closed."""

    kind = "protocol_error"


class NetworkError(TransportError):
    """Any other socket-level failure (no route, address family unsupported...)."""

    kind = "network_error"
