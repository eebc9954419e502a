"""The report of a registration check, per phone and per server set, JSON-serialisable.

A server set's ``result`` is one word an operator can act on:

============================  ================================================================
``registered``                the registrar accepted the credentials (then we un-registered)
``auth_rejected``             403, or the credentials were challenged again (wrong password)
``not_found``                 404/604: the registrar does not know the user
``timeout``                   no answer in the per-server budget (or 408)
``connection_refused``        TCP reset / ICMP port unreachable: nothing listens there
``tls_error``                 untrusted certificate, host-name mismatch, handshake failure
``dns_error``                 the server name does not resolve (see ``dns_error`` for why)
``server_error``              5xx (503 Retry-After included)
``transport_error``           the connection broke
``protocol_error``            the server answered bytes that are not valid SIP
``interval_too_brief``        423 even after raising Expires to Min-Expires
``rejected`` / ``declined``   another 3xx/4xx / a 6xx
``auth_unsupported``          a challenge this client cannot answer
``not_tried``                 the check stopped before this set
``config_error``              the phone record cannot be turned into a registration
============================  ================================================================
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum


class CheckResult(StrEnum):
    REGISTERED = "registered"
    AUTH_REJECTED = "auth_rejected"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    TLS_ERROR = "tls_error"
    DNS_ERROR = "dns_error"
    SERVER_ERROR = "server_error"
    TRANSPORT_ERROR = "transport_error"
    PROTOCOL_ERROR = "protocol_error"
    INTERVAL_TOO_BRIEF = "interval_too_brief"
    REJECTED = "rejected"
    DECLINED = "declined"
    AUTH_UNSUPPORTED = "auth_unsupported"
    NOT_TRIED = "not_tried"
    CONFIG_ERROR = "config_error"


@dataclass(frozen=True)
class ServerSetCheck:
    """The outcome for one server set (slot 1..3)."""

    slot: int
    server: str                       # the next hop as configured (proxy, else register server)
    configured_transport: str         # UDP, TCP, TLS or AUTO
    result: CheckResult
    address: str | None = None        # "host:port" actually used (the last target tried)
    transport: str | None = None      # UDP, TCP or TLS actually used
    sip_status: int | None = None     # the last final SIP status received
    reason: str = ""
    rtt_ms: float | None = None       # round trip of the REGISTER that got the final answer
    granted_expires: int | None = None  # seconds the registrar granted
    detail: str = ""
    unregistered: bool | None = None  # None: nothing was registered, so nothing to remove
    unregister_status: int | None = None
    seen_as: str | None = None        # our address as the registrar saw it (Via received:rport)
    dns_error: str | None = None      # nxdomain, no_answer, timeout, server_failure

    @property
    def ok(self) -> bool:
        return self.result is CheckResult.REGISTERED

    def to_dict(self) -> dict:
        d = asdict(self)
        d["result"] = self.result.value
        d["ok"] = self.ok
        return d


@dataclass(frozen=True)
class CheckReport:
    """The outcome for one phone."""

    phone_id: str
    user_name: str
    domain: str
    checked_at: str                   # ISO 8601 UTC, when the check started
    duration_ms: float
    servers: tuple[ServerSetCheck, ...]
    error: str | None = None          # a config error that prevented any attempt
    user_email: str = ""              # the phone's user (owner), as stored

    @property
    def ok(self) -> bool:
        """Every configured server set registered (a backup that fails is a failure too)."""
        return self.error is None and bool(self.servers) and all(s.ok for s in self.servers)

    @property
    def registered_anywhere(self) -> bool:
        return any(s.ok for s in self.servers)

    def server(self, slot: int) -> ServerSetCheck:
        for s in self.servers:
            if s.slot == slot:
                return s
        raise KeyError(slot)

    def to_dict(self) -> dict:
        return {
            "phone_id": self.phone_id,
            "user_email": self.user_email,
            "user_name": self.user_name,
            "domain": self.domain,
            "checked_at": self.checked_at,
            "duration_ms": self.duration_ms,
            "ok": self.ok,
            "registered_anywhere": self.registered_anywhere,
            "error": self.error,
            "servers": [s.to_dict() for s in self.servers],
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)
