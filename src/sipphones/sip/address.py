"""A server as configured: its address (:class:`HostPort`) and its transport (:class:`Transport`).

Plain values with no other import, so that the phones domain (whose records hold these) can use
them without loading the rest of the core. How the text an admin typed becomes a ``HostPort``
is the API's grammar (``sipphones.phones.rules.parse_host``); the host:port of URIs and Via
headers that peers send is read by ``sipphones.sip.syntax.parse_hostport`` (RFC 3261's
grammar; tests/sip/test_hostport_grammars.py holds the two side by side).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Transport", "HostPort", "format_host"]


class Transport(StrEnum):
    """The transport of a server set as configured (Zoom's ``transport_protocol``); ``AUTO``
    leaves the choice to RFC 3263 resolution."""

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"
    AUTO = "AUTO"


@dataclass(frozen=True)
class HostPort:
    """``host[:port]`` of a configured server."""

    host: str          # a DNS name, an IPv4 literal, or an IPv6 literal without brackets
    port: int | None
    kind: str          # "name", "ipv4" or "ipv6"

    @property
    def is_ip(self) -> bool:
        return self.kind != "name"

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.kind == "ipv6" else self.host
        return host if self.port is None else f"{host}:{self.port}"


def format_host(host: str) -> str:
    """Bracket an IPv6 literal for use in a URI or sent-by."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
