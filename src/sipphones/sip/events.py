"""What the registration machines emit and report (see ``sipphones.sip.registration``): the
states, the result kinds, the actions a driver performs, the reports it may log or store,
and the per-attempt and per-set results."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sipphones.sip.address import Transport
from sipphones.sip.config import Target
from sipphones.sip.headers import retry_after
from sipphones.sip.message import Request


__all__ = [
    "RandomSource",
    "RegistrationState",
    "ResultKind",
    "FINAL_KINDS",
    "NEXT_TARGET_KINDS",
    "TRANSPORT_KINDS",
    "Action",
    "Report",
    "Resolve",
    "Connect",
    "Send",
    "Release",
    "SetTimer",
    "Registered",
    "RegistrationFailed",
    "FailedOver",
    "FailedBack",
    "Expired",
    "Unregistered",
    "Stopped",
    "CheckFinished",
    "RetryAfterCapped",
    "Output",
    "AttemptResult",
    "SlotResult",
    "SlotStatus",
]


class RandomSource(Protocol):
    def randbytes(self, n: int) -> bytes: ...
    def random(self) -> float: ...


class RegistrationState(StrEnum):
    IDLE = "idle"
    RESOLVING = "resolving"
    CONNECTING = "connecting"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"          # not registered anywhere; a retry is scheduled (or the check ended)
    STOPPING = "stopping"      # un-registering
    STOPPED = "stopped"


class ResultKind(StrEnum):
    """How one attempt on one server set ended (also the ``kind`` of transport errors)."""

    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    AUTH_REJECTED = "auth_rejected"            # 403, or a challenge to our fresh credentials
    NOT_FOUND = "not_found"                    # 404, 604
    TIMEOUT = "timeout"                        # Timer F, the budget, a connect timeout, 408
    CONNECTION_REFUSED = "connection_refused"
    TLS_ERROR = "tls_error"
    DNS_ERROR = "dns_error"
    TRANSPORT_ERROR = "transport_error"        # connection lost/reset, network unreachable
    SERVER_ERROR = "server_error"              # 5xx (503 included), or every target avoided
    INTERVAL_TOO_BRIEF = "interval_too_brief"  # 423 even after raising to Min-Expires
    REJECTED = "rejected"                      # other 3xx/4xx, or a 200 granting nothing
    DECLINED = "declined"                      # 6xx other than 604
    AUTH_UNSUPPORTED = "auth_unsupported"      # a challenge we cannot answer
    NOT_TRIED = "not_tried"                    # check: a set not tried


# Failures that end the round (no other set is tried): see the module docstring.
FINAL_KINDS = frozenset({ResultKind.AUTH_REJECTED, ResultKind.NOT_FOUND, ResultKind.DECLINED,
                         ResultKind.AUTH_UNSUPPORTED})
# Failures after which the next target of the same set is tried (RFC 3263 §4.3).
NEXT_TARGET_KINDS = frozenset({ResultKind.TIMEOUT, ResultKind.CONNECTION_REFUSED,
                                ResultKind.TLS_ERROR, ResultKind.TRANSPORT_ERROR,
                                ResultKind.SERVER_ERROR})
TRANSPORT_KINDS = frozenset({ResultKind.TIMEOUT, ResultKind.CONNECTION_REFUSED,
                             ResultKind.TLS_ERROR, ResultKind.TRANSPORT_ERROR})


# --- outputs ----------------------------------------------------------------------------------

# The records of this module that the machines create for every message (outputs, reports,
# results) spell out the ``__init__`` that ``@dataclass`` would generate: mypyc compiles this
# one, while the generated one runs interpreted (~10x slower; frozen stays frozen, and eq, hash,
# repr and ``dataclasses.replace`` are still the generated ones). tests/sip/test_native_init.py
# checks every such ``__init__`` against the class's fields.
# Measured with bench/sip_micro.py (compiled, 10000 phones, alternating builds, 2026-12): the
# 27 written ``__init__``s of the core and its driver save about 20 % CPU per registration
# (median 129 vs 165 us), well over the 5 % that keeps hand-written code.


class Action:
    """Something the driver must do."""

    __slots__ = ()


class Report:
    """Something that happened, for logs, metrics and the store."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Resolve(Action):
    slot: int
    host: str
    port: int | None        # explicit port, or None (SRV lookup / transport default)
    transport: Transport    # as configured: UDP, TCP, TLS or AUTO

    def __init__(self, slot: int, host: str, port: int | None, transport: Transport) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "transport", transport)


@dataclass(frozen=True, slots=True)
class Connect(Action):
    slot: int
    target: Target

    def __init__(self, slot: int, target: Target) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)


@dataclass(frozen=True, slots=True)
class Send(Action):
    slot: int
    target: Target
    request: Request
    retransmission: bool = False

    def __init__(self, slot: int, target: Target, request: Request, retransmission: bool = False) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "retransmission", retransmission)

    @property
    def data(self) -> bytes:
        return self.request.to_bytes()


@dataclass(frozen=True, slots=True)
class Release(Action):
    slot: int
    target: Target

    def __init__(self, slot: int, target: Target) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)


@dataclass(frozen=True, slots=True)
class SetTimer(Action):
    at: float | None

    def __init__(self, at: float | None) -> None:
        object.__setattr__(self, "at", at)


@dataclass(frozen=True, slots=True)
class Registered(Report):
    slot: int
    target: Target
    expires: int            # granted seconds
    rtt: float              # of the REGISTER transaction that got the 200
    status: int = 200

    def __init__(self, slot: int, target: Target, expires: int, rtt: float, status: int = 200) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "expires", expires)
        object.__setattr__(self, "rtt", rtt)
        object.__setattr__(self, "status", status)


@dataclass(frozen=True, slots=True)
class RegistrationFailed(Report):
    slot: int
    target: Target | None
    kind: ResultKind
    status: int | None
    detail: str = ""
    probe: bool = False     # a fail-back probe failed; the registration elsewhere stands

    def __init__(self, slot: int, target: Target | None, kind: ResultKind, status: int | None,
                 detail: str = "", probe: bool = False) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "probe", probe)


@dataclass(frozen=True, slots=True)
class FailedOver(Report):
    from_slot: int
    to_slot: int
    kind: ResultKind        # why from_slot was left

    def __init__(self, from_slot: int, to_slot: int, kind: ResultKind) -> None:
        object.__setattr__(self, "from_slot", from_slot)
        object.__setattr__(self, "to_slot", to_slot)
        object.__setattr__(self, "kind", kind)


@dataclass(frozen=True, slots=True)
class FailedBack(Report):
    from_slot: int
    to_slot: int

    def __init__(self, from_slot: int, to_slot: int) -> None:
        object.__setattr__(self, "from_slot", from_slot)
        object.__setattr__(self, "to_slot", to_slot)


@dataclass(frozen=True, slots=True)
class Expired(Report):
    """The binding on ``slot`` ran out before a refresh succeeded."""

    slot: int

    def __init__(self, slot: int) -> None:
        object.__setattr__(self, "slot", slot)


@dataclass(frozen=True, slots=True)
class Unregistered(Report):
    slot: int
    target: Target | None
    ok: bool
    kind: ResultKind
    status: int | None

    def __init__(self, slot: int, target: Target | None, ok: bool, kind: ResultKind, status: int | None) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "ok", ok)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "status", status)


@dataclass(frozen=True, slots=True)
class Stopped(Report):
    def __init__(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class CheckFinished(Report):
    results: tuple["SlotResult", ...]


@dataclass(frozen=True, slots=True)
class RetryAfterCapped(Report):
    """A server asked not to be used for ``asked`` seconds; ``used`` (the policy's cap) applies."""

    slot: int
    target: Target
    asked: int
    used: int

    def __init__(self, slot: int, target: Target, asked: int, used: int) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "asked", asked)
        object.__setattr__(self, "used", used)


Output = Action | Report


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """The end of one REGISTER (or un-REGISTER) sequence on one server set."""

    slot: int
    kind: ResultKind
    status: int | None = None        # the last final status received, if any
    reason: str = ""                 # its reason phrase
    target: Target | None = None     # the last target used
    rtt: float | None = None         # of the last transaction that got a final response
    expires: int | None = None       # granted seconds (REGISTERED only)
    elapsed: float = 0.0             # from the start of the sequence to its end
    detail: str = ""
    retry_after: int | None = None

    def __init__(self, slot: int, kind: ResultKind, status: int | None = None, reason: str = "",
                 target: Target | None = None, rtt: float | None = None, expires: int | None = None,
                 elapsed: float = 0.0, detail: str = "", retry_after: int | None = None) -> None:
        object.__setattr__(self, "slot", slot)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "rtt", rtt)
        object.__setattr__(self, "expires", expires)
        object.__setattr__(self, "elapsed", elapsed)
        object.__setattr__(self, "detail", detail)
        object.__setattr__(self, "retry_after", retry_after)

    @property
    def ok(self) -> bool:
        return self.kind in (ResultKind.REGISTERED, ResultKind.UNREGISTERED)


@dataclass(frozen=True, slots=True)
class SlotResult:
    """What the check found for one server set."""

    slot: int
    server: str                      # the next hop as configured (proxy or register server)
    transport: Transport             # as configured
    kind: ResultKind
    status: int | None = None
    reason: str = ""
    target: Target | None = None
    rtt: float | None = None
    expires: int | None = None
    elapsed: float = 0.0
    detail: str = ""
    unregister: AttemptResult | None = None  # after a successful registration


@dataclass(frozen=True, slots=True)
class SlotStatus:
    """Observable state of one server set's binding."""

    slot: int
    registered: bool
    target: Target | None
    expires: int | None
    expires_at: float | None
    last: AttemptResult | None
    avoid_until: float | None
