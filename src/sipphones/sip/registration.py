"""The registration state machine of one phone across its server sets, sans-IO.

Two machines share one engine:

* :class:`Registration` keeps a phone registered (the monitor): register through the first
  server set that works, refresh before expiry, fail over, probe the preferred sets and fail
  back, un-REGISTER on :meth:`~Registration.stop`.
* :class:`RegistrationCheck` registers once per server set, un-registers right away and
  reports one :class:`SlotResult` per set (``sipphones check``).

Driver protocol
---------------
Every input method takes the current monotonic time ``now`` (seconds, any origin) and returns
a list of outputs. Outputs are *actions* the driver must perform and *reports* it may log or
store:

========================  ======================================================================
Action                    What the driver does
========================  ======================================================================
``Resolve(slot, ...)``    RFC 3263 resolution of ``host`` (NAPTR/SRV/A/AAAA as ``transport``
                          and ``port`` say), then ``resolved(slot, [Target...], now)`` or
                          ``resolve_failed(slot, now, detail)``. Only asked for host names:
                          IP literals become targets without the driver.
``Connect(slot, target)`` Make sure a flow to ``target`` exists (UDP socket or TCP/TLS
                          connection; reuse a live one), then ``connected(slot, target,
                          local_host, local_port, now)`` with the local address of that flow
                          (it goes into Via and Contact), or ``transport_error(slot, target,
                          kind, now, detail)``. Asked before every REGISTER transaction
                          sequence (initial, refresh, un-REGISTER), so answering from a live
                          connection must be cheap.
``Send(slot, target, request, retransmission)``
                          Write ``request.to_bytes()`` (also ``.data``) on that flow. If
                          writing fails, or later the connection drops or an ICMP error
                          arrives, call ``transport_error``.
``Release(slot, target)`` The machine no longer needs that flow; close it unless shared.
                          (May repeat; releasing an unknown flow must be a no-op.)
``SetTimer(at)``          Call ``timer(now)`` once ``now >= at`` (``None``: no timer). Each
                          SetTimer replaces the previous one; ``next_deadline`` holds the same.
========================  ======================================================================

Every response that arrives on any flow is parsed by the driver and given to ``receive(response,
now)``; the machine matches it to its transaction by Via branch and CSeq method and ignores
strays (``call_ids`` lists the Call-IDs to demultiplex a shared socket by). Answers that
arrive after the machine gave up (a late ``connected``) are ignored. Targets are compared by
value: pass back the ``Target`` the action named. A ``transport_error`` kind is one of
``connection_refused``, ``tls_error``, ``timeout`` (e.g. a TCP connect the OS gave up on) or
``transport_error`` (reset, lost, unreachable...).

Reports: :class:`Registered` after every 200 (first registration, each refresh, fail-back),
:class:`RetryAfterCapped` when a ``Retry-After`` was longer than the policy allows,
:class:`RegistrationFailed` for each failed sequence (``probe=True`` for a failed fail-back
probe), :class:`FailedOver`, :class:`FailedBack`, :class:`Expired`, :class:`Unregistered` (stop
or after a fail-back), :class:`Stopped`, and for the check :class:`CheckFinished`.

Decisions (RFC 3261 leaves them to the UA; a voice engineer's choices)
--------------------------------------------------------------------------
* **Call-ID and From tag per server set** (per phone and slot), both kept for the machine's
  life, with a CSeq that rises by one per request: each set is a registrar of its own (RFC 3261
  §10.2: one Call-ID per registrar, rising CSeq) and each binding can be refreshed or removed
  on its own. A new machine (restart, changed phone) starts new Call-IDs.
* **Via** ``SIP/2.0/<T> <local>;rport;branch=z9hG4bK<random>`` (RFC 3581), a fresh branch per
  transaction; **Contact** ``<sip:<user>@<local>;transport=<t>>``; Max-Forwards 70; User-Agent;
  Expires. When the local address of a set's flow changes (a new TCP connection, a new port),
  the REGISTER also lists the old Contact with ``;expires=0`` so no stale binding lingers.
* **Authentication**: one authenticated retry per challenge, and a bounded number of rounds
  per sequence on one target. A 401/407 that answers credentials we computed from a challenge of
  the *same* sequence is a rejection unless it says ``stale=true`` for a realm we answered (then
  the new nonce is used and it does not count, up to ``policy.max_stale_retries`` in a row). A
  407 followed by a 401 is two different challenges (proxy, then registrar) and both are
  answered; a second challenge of a kind (WWW or Proxy) already answered, under a realm we did
  not answer, is a rejection too (a registrar inventing realms, or alternating 401 and 407 with
  new realms, would otherwise be answered forever). So a sequence sends at most
  ``2 + policy.max_stale_retries`` authenticated REGISTERs per target. The last challenge of
  each realm is reused on refreshes (next ``nc``) when ``policy.reuse_credentials``, which saves
  a round trip; a challenge to such reused credentials never counts as a rejection.
* **Granted expiry**: the ``expires`` of our Contact in the 200, else the ``Expires`` header,
  else the only Contact's ``expires`` (a registrar or SBC that rewrote our Contact), else what
  was asked. It is counted from when the REGISTER was sent. A grant of 0 means the registrar
  kept no binding and is a failure.
* **Refresh** at ``policy.refresh_delay(granted)`` (a margin before expiry, half the time when
  the grant is short) made earlier by the jitter. If it has not succeeded by the expiry, the
  machine reports :class:`Expired` and keeps trying.
* **423** raises Expires to ``Min-Expires`` and retries once (the raised value is kept for the
  set's later refreshes); a second 423 is ``interval_too_brief``.
* **Per-target retries** (RFC 3263 §4.3): a timeout, a transport error or a 5xx moves to the next
  target of the same set; when the set has none left, to the next set.
* **503 (any 5xx) with Retry-After** marks that target as not to be used until it elapses, at
  most ``policy.max_retry_after`` (a longer value is cut to it and :class:`RetryAfterCapped` is
  reported, for the driver to log).
* **Sequence budget** (``policy.sequence_budget``, the check's): a REGISTER sequence that has
  not ended on a target within it (connection, every transaction, challenges, a 423 retry) fails
  there as a ``timeout``, whatever it was waiting for, and goes on to the next target.
* **403, 404/604, a repeated challenge, other 6xx are final**: they say the credentials or the
  user are wrong, which another set of the same PBX will say too, and retrying bad credentials
  gets the phone's address banned by fail2ban-style protections. No other set is tried; the
  machine reports the failure and tries again after ``policy.rejected_retry``. The *check* does
  try every set, once each, since it reports per set.
* **Other failures move on**: 408, other 4xx/3xx (a server that refuses our request may be
  alone in doing so), ``interval_too_brief``, DNS errors. Order: the sets after the failed one,
  then the ones before it. When all failed, the state is ``failed`` and a new round starts from
  set 1 after a backoff (``policy.retry_base`` doubling to ``retry_max``, jittered).
* **Fail-back**: while registered on a set other than the first, the sets before it are probed
  with a real REGISTER every ``policy.probe_interval``; on 200 the machine reports
  :class:`FailedBack`, refreshes there from now on, and un-registers from the backup set.
* **Connection loss** while registered over TCP/TLS (``transport_error`` with no transaction in
  flight) triggers an immediate refresh: the registrar's flow to us is gone.
* **stop()** un-registers (``Expires: 0``, same Call-ID, next CSeq, challenges answered once)
  every set that holds or may hold a binding (a REGISTER in flight counts), then reports
  :class:`Unregistered` per set and :class:`Stopped`.
* Timer K of the transactions is not waited for: its expiry only forgets the transaction, and a
  response that matches no live transaction is ignored anyway, which is the same behaviour.

Randomness (Call-ID, tags, branches, cnonces, jitter) comes from the injected ``rng``: any
object with ``randbytes(n) -> bytes`` and ``random() -> float`` (``random.SystemRandom()`` in
production, ``random.Random(seed)`` in tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from sipphones.sip.address import Transport, format_host
from sipphones.sip.digest import DigestClient
from sipphones.sip.config import (
    RegistrationConfig,
    RegistrationPolicy,
    ServerSetConfig,
    Target,
    TargetTransport,
)
from sipphones.sip.errors import BadHeaderValue, DigestError
from sipphones.sip.headers import (
    _DIGITS_RE,
    _SIMPLE_PARAMS_RE,
    SipUri,
    granted_expires,
    min_expires,
    parse_contacts,
    parse_delta_seconds,
    retry_after,
)
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.transaction import (
    MAGIC_COOKIE,
    FinalResponse,
    NonInviteClientTransaction,
    TransactionTimeout,
    Transmit,
    response_key,
)

__all__ = [
    "RandomSource", "RegistrationState", "ResultKind", "FINAL_KINDS",
    "Resolve", "Connect", "Send", "Release", "SetTimer", "Action",
    "Registered", "RegistrationFailed", "FailedOver", "FailedBack", "Expired", "Unregistered",
    "Stopped", "CheckFinished", "RetryAfterCapped", "Report", "Output",
    "AttemptResult", "SlotResult", "SlotStatus", "Registration", "RegistrationCheck",
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
_NEXT_TARGET_KINDS = frozenset({ResultKind.TIMEOUT, ResultKind.CONNECTION_REFUSED,
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


# --- internals --------------------------------------------------------------------------------


class _Purpose(StrEnum):
    REGISTER = "register"
    REFRESH = "refresh"
    PROBE = "probe"
    UNREGISTER = "unregister"


class _Phase(StrEnum):
    RESOLVING = "resolving"
    CONNECTING = "connecting"
    WAITING = "waiting"
    DONE = "done"


@dataclass
class _Binding:
    """Per server set: identity of the binding and what the registrar holds."""

    server: ServerSetConfig
    call_id: str
    from_tag: str
    expires: int
    auth: DigestClient
    cseq: int = 0
    targets: list[Target] | None = None    # the last resolution (or the static target)
    target: Target | None = None           # the target the binding lives on
    contact: SipUri | None = None          # the Contact of the last REGISTER
    bound: list[SipUri] = field(default_factory=list)  # Contacts the registrar may hold
    contact_for: tuple[TargetTransport, str, int] | None = None  # (transport, host, port) of ``contact``
    via_for: tuple[TargetTransport, str, int] | None = None      # ... and of ``via_prefix``
    via_prefix: str = ""                   # our Via up to the branch's random part
    contact_text: str = ""                 # "<contact>" as written in the REGISTER
    registered: bool = False
    granted: int | None = None
    expires_at: float | None = None
    last: AttemptResult | None = None

    @property
    def slot(self) -> int:
        return self.server.slot


def _kind_for_status(status: int) -> ResultKind:
    if status in (403, 401, 407):
        return ResultKind.AUTH_REJECTED
    if status in (404, 604):
        return ResultKind.NOT_FOUND
    if status == 408:
        return ResultKind.TIMEOUT
    if status == 423:
        return ResultKind.INTERVAL_TOO_BRIEF
    if 500 <= status < 600:
        return ResultKind.SERVER_ERROR
    if status >= 600:
        return ResultKind.DECLINED
    return ResultKind.REJECTED


class _Attempt:
    """One REGISTER sequence on one set: resolve, connect, send, answer challenges, conclude."""

    def __init__(self, engine: "_Engine", binding: _Binding, purpose: _Purpose, now: float):
        self.engine = engine
        self.binding = binding
        self.purpose = purpose
        self.started_at = now
        self.phase = _Phase.RESOLVING
        self.deadline: float | None = None
        self.targets: list[Target] = []
        self.index = -1
        self.target: Target | None = None
        self.local: tuple[str, int] | None = None
        self.tx: NonInviteClientTransaction | None = None
        self.connected: set[Target] = set()
        self.answered: set[tuple[bool, str]] = set()   # (proxy?, realm) answered in this sequence
        self.stale_in_a_row = 0
        self.auth_rounds = 0                           # challenges answered on the current target
        self.budget_at: float | None = None            # policy.sequence_budget on the current target
        self.interval_retried = False
        self.last_failure: AttemptResult | None = None
        self.result: AttemptResult | None = None
        self.expires = 0 if purpose is _Purpose.UNREGISTER else binding.expires
        if not engine.policy.reuse_credentials:
            binding.auth.forget()

    @property
    def slot(self) -> int:
        return self.binding.slot

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, now: float) -> None:
        b = self.binding
        if self.purpose in (_Purpose.REFRESH, _Purpose.UNREGISTER) and b.target is not None:
            # Stay on the target the binding lives on; a refresh may fall back to the set's
            # other targets, an un-REGISTER only makes sense where the binding is.
            others = [t for t in (b.targets or []) if t != b.target]
            self.targets = [b.target] + (others if self.purpose is _Purpose.REFRESH else [])
            self._next_target(now)
            return
        static = b.server.static_targets()
        if static is not None:
            b.targets = static
            self.targets = list(static)
            self._next_target(now)
            return
        hop = b.server.next_hop
        self.phase = _Phase.RESOLVING
        self.deadline = now + self.engine.policy.resolve_timeout
        self.engine._emit(Resolve(self.slot, hop.host, hop.port, b.server.transport))

    def on_resolved(self, targets: list[Target], now: float) -> None:
        if self.phase is not _Phase.RESOLVING:
            return
        if not targets:
            self._finish(self._failure(ResultKind.DNS_ERROR, now, detail="no address found"), now)
            return
        self.binding.targets = list(targets)
        self.targets = list(targets)
        self._next_target(now)

    def on_resolve_failed(self, detail: str, now: float) -> None:
        if self.phase is _Phase.RESOLVING:
            self._finish(self._failure(ResultKind.DNS_ERROR, now, detail=detail), now)

    def on_connected(self, target: Target, local_host: str, local_port: int, now: float) -> None:
        if self.phase is not _Phase.CONNECTING or target != self.target:
            return
        self.local = (local_host, local_port)
        self._send_register(now)

    def on_transport_error(self, target: Target, kind: ResultKind, detail: str, now: float) -> bool:
        """Returns False when the error is not about this attempt's current flow."""
        if self.phase not in (_Phase.CONNECTING, _Phase.WAITING) or target != self.target:
            return False
        if self.tx is not None:
            self.tx.transport_error(now)
        self._target_failed(self._failure(kind, now, detail=detail), now)
        return True

    def on_response(self, response: Response, now: float) -> None:
        """A response whose key matched this attempt's transaction (see ``_Engine.receive``)."""
        if self.tx is None or self.phase is not _Phase.WAITING:
            return
        for event in self.tx._receive_matched(response, now):
            if isinstance(event, FinalResponse):
                self._on_final(event.response, event.rtt, now)

    def on_timer(self, now: float) -> None:
        if self.budget_at is not None and now >= self.budget_at and self.phase is not _Phase.RESOLVING:
            self.budget_at = None
            budget = self.engine.policy.sequence_budget
            self._target_failed(self._failure(ResultKind.TIMEOUT, now,
                                              detail=f"no result within the {budget:g} s allowed per server"), now)
            return
        if self.phase in (_Phase.RESOLVING, _Phase.CONNECTING):
            if self.deadline is not None and now >= self.deadline:
                if self.phase is _Phase.RESOLVING:
                    self._finish(self._failure(ResultKind.DNS_ERROR, now, detail="resolution timed out"), now)
                else:
                    self._target_failed(self._failure(ResultKind.TIMEOUT, now, detail="connection timed out"), now)
            return
        if self.phase is _Phase.WAITING and self.tx is not None:
            for event in self.tx.timer(now):
                if isinstance(event, Transmit):
                    self.engine._emit(Send(self.slot, self.target, event.request, event.retransmission))  # type: ignore[arg-type]
                elif isinstance(event, TransactionTimeout):
                    self._drop_tx()
                    detail = ("no final response within the server budget"
                              if event.cause == "budget" else "no final response (Timer F)")
                    self._target_failed(self._failure(ResultKind.TIMEOUT, now, detail=detail), now)

    @property
    def next_deadline(self) -> float | None:
        deadline = self._step_deadline()
        budget_at = self.budget_at
        if budget_at is None or self.phase is _Phase.DONE:
            return deadline
        return budget_at if deadline is None or budget_at < deadline else deadline

    def _step_deadline(self) -> float | None:
        if self.phase in (_Phase.RESOLVING, _Phase.CONNECTING):
            return self.deadline
        if self.phase is _Phase.WAITING and self.tx is not None:
            # Timer K is not waited for (see the module docstring).
            if self.tx.final_response is not None:
                return None
            return self.tx.next_deadline
        return None

    @property
    def in_flight(self) -> bool:
        """A REGISTER has been sent whose outcome is unknown."""
        return (self.phase is _Phase.WAITING and self.tx is not None
                and self.tx.final_response is None)

    def abandon(self) -> None:
        self._drop_tx()
        self.phase = _Phase.DONE

    # -- steps ---------------------------------------------------------------------------

    def _next_target(self, now: float) -> None:
        while True:
            self.index += 1
            if self.index >= len(self.targets):
                failure = self.last_failure or self._failure(
                    ResultKind.SERVER_ERROR, now, detail="every target asked us to retry later")
                self._finish(failure, now)
                return
            target = self.targets[self.index]
            until = self.engine._avoided_until(target, now)
            if until is not None:
                self.last_failure = self.last_failure or self._failure(
                    ResultKind.SERVER_ERROR, now, target=target,
                    detail=f"server asked to retry after {until - now:.0f} s")
                continue
            break
        self.target = target
        self.local = None
        self.answered.clear()
        self.stale_in_a_row = 0
        self.auth_rounds = 0
        budget = self.engine.policy.sequence_budget
        self.budget_at = None if budget is None else now + budget
        self.phase = _Phase.CONNECTING
        self.deadline = now + self.engine.policy.timers.response_timeout
        self.connected.add(target)
        self.engine._emit(Connect(self.slot, target))

    def _send_register(self, now: float) -> None:
        self._drop_tx()
        request = self.engine._build_register(self, now)
        self.tx = NonInviteClientTransaction(request, reliable=self.target.transport.reliable,  # type: ignore[union-attr]
                                             timers=self.engine.policy.timers)
        self.phase = _Phase.WAITING
        self.deadline = None
        self.engine._by_branch[self.tx.branch] = self
        for event in self.tx.start(now):
            self.engine._emit(Send(self.slot, self.target, event.request, event.retransmission))  # type: ignore[arg-type,union-attr]

    def _drop_tx(self) -> None:
        if self.tx is not None:
            self.engine._by_branch.pop(self.tx.branch, None)
            self.tx.terminate()

    def _failure(self, kind: ResultKind, now: float, *, status: int | None = None, reason: str = "",
                 detail: str = "", rtt: float | None = None, retry: int | None = None,
                 target: Target | None = None) -> AttemptResult:
        return AttemptResult(slot=self.slot, kind=kind, status=status, reason=reason,
                             target=target or self.target, rtt=rtt, elapsed=now - self.started_at,
                             detail=detail, retry_after=retry)

    def _target_failed(self, failure: AttemptResult, now: float) -> None:
        """Try the next target of the set for failures RFC 3263 allows, else conclude."""
        self._drop_tx()
        self.last_failure = failure
        if failure.kind in _NEXT_TARGET_KINDS and self.index + 1 < len(self.targets):
            self._next_target(now)
        else:
            self._finish(failure, now)

    def _on_final(self, response: Response, rtt: float, now: float) -> None:
        status = response.status
        b = self.binding
        sent_at = self.tx.sent_at if self.tx is not None else now
        self._drop_tx()
        if 200 <= status < 300:
            if self.purpose is _Purpose.UNREGISTER:
                self._finish(AttemptResult(self.slot, ResultKind.UNREGISTERED, status, response.reason,
                                           self.target, rtt, None, now - self.started_at), now)
                return
            granted = _granted(response, b.contact, self.expires, b.contact_text)
            if granted <= 0:
                self._finish(self._failure(ResultKind.REJECTED, now, status=status, reason=response.reason,
                                           rtt=rtt, detail="the registrar granted no time"), now)
                return
            b.expires = self.expires if self.expires > 0 else b.expires
            self.engine._bound(b, self.target, granted, sent_at)  # type: ignore[arg-type]
            self._finish(AttemptResult(self.slot, ResultKind.REGISTERED, status, response.reason,
                                       self.target, rtt, granted, now - self.started_at), now)
            return
        if status in (401, 407):
            verdict = self._take_challenge(response)
            if verdict is None:
                self._send_register(now)
                return
            kind, detail = verdict
            self._finish(self._failure(kind, now, status=status, reason=response.reason, rtt=rtt,
                                       detail=detail), now)
            return
        if status == 423 and self.expires > 0:
            try:
                floor = min_expires(response)
            except BadHeaderValue:
                floor = None
            if not self.interval_retried and floor is not None and floor > self.expires:
                self.interval_retried = True
                self.expires = floor
                b.expires = floor
                self._send_register(now)
                return
            self._finish(self._failure(ResultKind.INTERVAL_TOO_BRIEF, now, status=status,
                                       reason=response.reason, rtt=rtt,
                                       detail=f"Min-Expires {floor}" if floor is not None else "no usable Min-Expires"),
                         now)
            return
        kind = _kind_for_status(status)
        retry = None
        if status >= 500:
            try:
                ra = retry_after(response)
            except BadHeaderValue:
                ra = None
            if ra is not None:
                retry = ra.seconds
                cap = int(self.engine.policy.max_retry_after)
                if retry > cap:
                    self.engine._emit(RetryAfterCapped(self.slot, self.target, retry, cap))  # type: ignore[arg-type]
                    retry = cap
                self.engine._avoid(self.target, now + retry)  # type: ignore[arg-type]
        failure = self._failure(kind, now, status=status, reason=response.reason, rtt=rtt, retry=retry)
        self._target_failed(failure, now)

    def _take_challenge(self, response: Response) -> tuple[ResultKind, str] | None:
        """Remember the challenges of a 401/407. None: send again; else (kind, detail) to fail."""
        try:
            result = self.binding.auth.handle_challenge(response)
        except DigestError as e:
            self.binding.auth.forget()
            return ResultKind.AUTH_UNSUPPORTED, _clip(str(e))
        answered = self.answered
        policy = self.engine.policy
        keys = [(c.proxy, c.realm) for c in result.challenges]
        stale_again = False
        for c, key in zip(result.challenges, keys):
            if key in answered:
                if not c.stale:
                    self.binding.auth.forget()
                    return ResultKind.AUTH_REJECTED, "credentials rejected"
                stale_again = True
            elif answered and any(kind == c.proxy for kind, _ in answered):
                # this kind of challenge was answered already, under another realm
                self.binding.auth.forget()
                return ResultKind.AUTH_REJECTED, "challenged again under a new realm after our answer"
        if stale_again:  # every repeated realm says stale=true: the credentials were right
            self.stale_in_a_row += 1
            if self.stale_in_a_row > policy.max_stale_retries:
                self.binding.auth.forget()
                return ResultKind.AUTH_REJECTED, "the server keeps calling our nonce stale"
        else:
            self.stale_in_a_row = 0
        self.auth_rounds += 1
        if self.auth_rounds > 2 + policy.max_stale_retries:
            self.binding.auth.forget()
            return ResultKind.AUTH_REJECTED, "too many challenges for one registration"
        answered.update(keys)
        return None

    def _finish(self, result: AttemptResult, now: float) -> None:
        if self.phase is _Phase.DONE:
            return
        self._drop_tx()
        self.phase = _Phase.DONE
        self.result = result
        self.binding.last = result
        self.engine._attempt_finished(self, result, now)


_DETAIL_MAX = 200


def _clip(text: str) -> str:
    """A detail quoting the server (an algorithm, a realm) short enough for a log line."""
    return text if len(text) <= _DETAIL_MAX else text[:_DETAIL_MAX] + "..."


def _granted_fast(response: Response, ours_text: str) -> int | None:
    """The grant when the 200 lists just our Contact, exactly as we wrote it (``ours_text``,
    ``<uri>``) followed by plain parameters with a numeric ``expires``: what ``granted_expires``
    finds in that case, without parsing the URI back. ``None``: use the general path."""
    lines = response.headers.get_all("Contact")
    if len(lines) != 1 or not lines[0].startswith(ours_text):
        return None
    rest = lines[0][len(ours_text):]
    if not rest or _SIMPLE_PARAMS_RE.fullmatch(rest) is None:
        return None
    for part in rest[1:].split(";"):
        name, eq, value = part.partition("=")
        if name.lower() == "expires":   # the first one counts, as in the parameter dict
            if eq and _DIGITS_RE.fullmatch(value):
                return parse_delta_seconds(value, "Contact expires")
            return None
    return None


def _granted(response: Response, ours: SipUri | None, asked: int, ours_text: str = "") -> int:
    if ours is not None and ours_text:
        fast = _granted_fast(response, ours_text)
        if fast is not None:
            return fast
    try:
        granted = granted_expires(response, ours) if ours is not None else None
    except BadHeaderValue:
        granted = None
    if granted is not None:
        return granted
    header = response.headers.get("Expires")
    if header is not None:
        try:
            return parse_delta_seconds(header, "Expires")
        except BadHeaderValue:
            pass
    try:
        contacts = parse_contacts(response.headers)
    except BadHeaderValue:
        contacts = []
    if len(contacts) == 1:
        try:
            only = contacts[0].expires
        except BadHeaderValue:
            only = None
        if only is not None:
            return only
    return asked


class _Engine:
    """Bindings, attempts, routing of driver events, timers and output collection."""

    def __init__(self, config: RegistrationConfig, *, rng: RandomSource,
                 policy: RegistrationPolicy = RegistrationPolicy()):
        self.config = config
        self.policy = policy
        self._rng = rng
        self._bindings: dict[int, _Binding] = {}
        for server in config.server_sets:
            auth = DigestClient(config.auth_username, config.password, cnonce_factory=self._cnonce)
            self._bindings[server.slot] = _Binding(server=server, call_id=self._token(16),
                                                   from_tag=self._token(8), expires=config.expires,
                                                   auth=auth)
        self._attempts: dict[int, _Attempt] = {}
        self._by_branch: dict[str, _Attempt] = {}
        self._avoid_until: dict[Target, float] = {}
        self._out: list[Output] | None = None   # only during a call: see _call
        self._announced: float | None = None
        self._in_call = False
        self.last_result: AttemptResult | None = None
        self.stray_responses = 0
        self.started = False
        self.stopping = False
        self.stopped = False

    # -- driver inputs -------------------------------------------------------------------

    def resolved(self, slot: int, targets: list[Target], now: float) -> list[Output]:
        return self._call(now, lambda: self._with_attempt(slot, lambda a: a.on_resolved(list(targets), now)))

    def resolve_failed(self, slot: int, now: float, detail: str = "") -> list[Output]:
        return self._call(now, lambda: self._with_attempt(slot, lambda a: a.on_resolve_failed(detail, now)))

    def connected(self, slot: int, target: Target, local_host: str, local_port: int,
                  now: float) -> list[Output]:
        self._enter()   # _call without closures: this and receive run for every REGISTER
        try:
            attempt = self._attempts.get(slot)
            if attempt is not None and attempt.phase is not _Phase.DONE:
                attempt.on_connected(target, local_host, local_port, now)
            return self._leave()
        finally:
            self._out = None
            self._in_call = False

    def transport_error(self, slot: int, target: Target, kind: ResultKind | str, now: float,
                        detail: str = "") -> list[Output]:
        kind = ResultKind(kind)

        def run() -> None:
            attempt = self._attempts.get(slot)
            if attempt is not None and attempt.on_transport_error(target, kind, detail, now):
                return
            self._idle_transport_error(slot, target, kind, now)
        return self._call(now, run)

    def receive(self, response: Response, now: float) -> list[Output]:
        self._enter()
        try:
            key = response_key(response)   # computed once: it is the whole of tx.matches()
            attempt = self._by_branch.get(key[0]) if key is not None else None
            tx = attempt.tx if attempt is not None else None
            if attempt is None or tx is None or key != (tx.branch, tx.method):
                self.stray_responses += 1
            else:
                attempt.on_response(response, now)
            return self._leave()
        finally:
            self._out = None
            self._in_call = False

    def timer(self, now: float) -> list[Output]:
        def run() -> None:
            for attempt in list(self._attempts.values()):
                deadline = attempt.next_deadline
                if deadline is not None and now >= deadline and attempt.phase is not _Phase.DONE:
                    attempt.on_timer(now)
            self._machine_timer(now)
        return self._call(now, run)

    # -- observation ---------------------------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        deadlines = [a.next_deadline for a in self._attempts.values()]
        deadlines.extend(self._machine_deadlines())
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def slot_status(self, slot: int, now: float | None = None) -> SlotStatus:
        b = self._bindings[slot]
        until = None
        for target in b.targets or []:
            t = self._avoid_until.get(target)
            if t is not None and (now is None or t > now):
                until = t if until is None else max(until, t)
        return SlotStatus(slot=slot, registered=b.registered, target=b.target, expires=b.granted,
                          expires_at=b.expires_at, last=b.last, avoid_until=until)

    def call_id(self, slot: int) -> str:
        return self._bindings[slot].call_id

    @property
    def call_ids(self) -> frozenset[str]:
        """Every Call-ID this machine uses (one per server set): for demultiplexing responses."""
        return frozenset(b.call_id for b in self._bindings.values())

    # -- plumbing ------------------------------------------------------------------------

    def _call(self, now: float, fn) -> list[Output]:
        self._enter()
        try:
            fn()
            return self._leave()
        finally:
            self._out = None
            self._in_call = False

    def _enter(self) -> None:
        """Start a driver input (see ``_call``; the caller resets ``_out``/``_in_call`` after)."""
        if self._in_call:
            raise RuntimeError("re-entrant call into the registration machine")
        self._in_call = True
        self._out = []

    def _leave(self) -> list[Output]:
        """The outputs of the input, with a SetTimer when the next deadline changed."""
        out: list[Output] = self._out  # type: ignore[assignment]
        deadline = self.next_deadline
        if deadline != self._announced:
            self._announced = deadline
            out.append(SetTimer(deadline))
        return out

    def _emit(self, output: Output) -> None:
        self._out.append(output)  # type: ignore[union-attr]

    def _with_attempt(self, slot: int, fn) -> None:
        attempt = self._attempts.get(slot)
        if attempt is not None and attempt.phase is not _Phase.DONE:
            fn(attempt)

    def _token(self, nbytes: int) -> str:
        return self._rng.randbytes(nbytes).hex()

    def _cnonce(self) -> str:
        return self._rng.randbytes(8).hex()

    def _jittered(self, delay: float) -> float:
        if self.policy.jitter <= 0:
            return delay
        return delay * (1.0 - self.policy.jitter * self._rng.random())

    def _avoid(self, target: Target, until: float) -> None:
        self._avoid_until[target] = max(until, self._avoid_until.get(target, until))

    def _avoided_until(self, target: Target, now: float) -> float | None:
        until = self._avoid_until.get(target)
        if until is None:
            return None
        if until <= now:
            del self._avoid_until[target]
            return None
        return until

    def _slot_avoided_until(self, slot: int, now: float) -> float | None:
        """When every known target of the set is avoided, the earliest end; else None."""
        targets = self._bindings[slot].targets
        if not targets:
            return None
        ends = [self._avoided_until(t, now) for t in targets]
        if any(e is None for e in ends):
            return None
        return min(ends)  # type: ignore[type-var]

    def _start_attempt(self, slot: int, purpose: _Purpose, now: float) -> _Attempt:
        old = self._attempts.get(slot)
        if old is not None:
            old.abandon()
        attempt = _Attempt(self, self._bindings[slot], purpose, now)
        self._attempts[slot] = attempt
        attempt.start(now)
        return attempt

    def _release(self, slot: int, targets) -> None:
        b = self._bindings[slot]
        for target in sorted(targets, key=str):
            if b.registered and target == b.target:
                continue
            self._emit(Release(slot, target))

    def _build_register(self, attempt: _Attempt, now: float) -> Request:
        cfg = self.config
        b = attempt.binding
        target = attempt.target
        local_host, local_port = attempt.local  # type: ignore[misc]
        b.cseq += 1
        contact, contact_text = self._contact(b, local_host, local_port, target)  # type: ignore[arg-type]
        # Names below are canonical (Headers._trusted): this runs for every REGISTER of every phone.
        transport = target.transport  # type: ignore[union-attr]
        via_for = b.via_for
        if via_for is None or via_for[0] is not transport or via_for[1] != local_host or via_for[2] != local_port:
            b.via_prefix = (f"SIP/2.0/{transport.value} {format_host(local_host)}:{local_port}"  # type: ignore[union-attr]
                            f";rport;branch={MAGIC_COOKIE}")
            b.via_for = (transport, local_host, local_port)  # type: ignore[assignment]
        items = [("Via", b.via_prefix + self._token(12)), ("Max-Forwards", "70")]
        if b.server.route:
            items.append(("Route", b.server.route))
        aor = cfg.aor
        items += [("From", f"<{aor}>;tag={b.from_tag}"), ("To", f"<{aor}>"), ("Call-ID", b.call_id),
                  ("CSeq", f"{b.cseq} REGISTER")]
        if attempt.purpose is _Purpose.UNREGISTER:
            contacts = list(b.bound) or ([b.contact] if b.contact is not None else [])
            for uri in contacts:
                items.append(("Contact", contact_text if uri is contact else f"<{uri}>"))
            if not contacts:
                items.append(("Contact", contact_text))
        else:
            if b.contact is not contact:
                b.contact, b.contact_text = contact, contact_text
                b.contact_for = (transport, local_host, local_port)
            items.append(("Contact", contact_text))
            for old in b.bound:
                if old is not contact and not old.equivalent(contact):
                    items.append(("Contact", f"<{old}>;expires=0"))
        items.append(("Expires", str(attempt.expires)))
        items.append(("User-Agent", cfg.user_agent))
        if b.auth.challenged:
            # What DigestClient.authorize(request) adds to this request (which has no
            # Authorization to replace): digest uri = the Request-URI, empty body, next nc per realm.
            items += b.auth.authorization_headers("REGISTER", cfg.request_uri, b"")
        return Request("REGISTER", cfg.request_uri, Headers._trusted(items))

    def _contact_uri(self, host: str, port: int, target: Target) -> SipUri:
        return SipUri(host=host, user=self.config.user, port=port,
                      params={"transport": target.transport.value.lower()})

    def _contact(self, b: _Binding, host: str, port: int, target: Target) -> tuple[SipUri, str]:
        """Our Contact for a flow's local address and its ``<...>`` text, built again only when
        the address changes (the same object, so the bookkeeping compares by identity first)."""
        key = b.contact_for
        if (b.contact is not None and key is not None and key[0] is target.transport and key[1] == host
                and key[2] == port):
            return b.contact, b.contact_text
        uri = self._contact_uri(host, port, target)
        return uri, f"<{uri}>"

    def _bound(self, b: _Binding, target: Target, granted: int, sent_at: float) -> None:
        """A 2xx to a REGISTER with our Contact: the registrar holds it until sent_at + granted."""
        b.registered = True
        b.target = target
        b.granted = granted
        b.expires_at = sent_at + granted
        b.bound = [b.contact] if b.contact is not None else []

    def _unbound(self, b: _Binding) -> None:
        b.registered = False
        b.granted = None
        b.expires_at = None

    # -- for subclasses ------------------------------------------------------------------

    def _attempt_finished(self, attempt: _Attempt, result: AttemptResult, now: float) -> None:
        raise NotImplementedError

    def _machine_deadlines(self) -> list[float | None]:
        return []

    def _machine_timer(self, now: float) -> None:
        pass

    def _idle_transport_error(self, slot: int, target: Target, kind: ResultKind, now: float) -> None:
        pass


class Registration(_Engine):
    """Keeps one phone registered through its server sets (see the module docstring).

    Use: ``outputs = reg.start(now)``, perform the actions, feed the answers back, call
    ``timer(now)`` when the last ``SetTimer`` is due, ``stop(now)`` to un-register.
    """

    def __init__(self, config: RegistrationConfig, *, rng: RandomSource,
                 policy: RegistrationPolicy = RegistrationPolicy()):
        super().__init__(config, rng=rng, policy=policy)
        self.active_slot: int | None = None
        self._round_tried: tuple[int, ...] = ()   # tuples: no GC-tracked list per phone
        self._failed_rounds = 0
        self._retry_at: float | None = None
        self._refresh_at: float | None = None
        self._probe_at: float | None = None
        self._probe_tried: tuple[int, ...] = ()
        self.last_status: int | None = None
        self.last_kind: ResultKind | None = None
        self.last_rtt: float | None = None
        self.last_error: AttemptResult | None = None     # the last failed REGISTER/refresh
        self.last_success_at: float | None = None        # ``now`` of the last 200

    # -- inputs --------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        def run() -> None:
            if self.started or self.stopped:
                return
            self.started = True
            self._new_round(now)
        return self._call(now, run)

    def stop(self, now: float) -> list[Output]:
        """Un-register every set that holds (or may hold) a binding, then report Stopped."""
        return self._call(now, lambda: self._stop(now))

    # -- observation ---------------------------------------------------------------------

    @property
    def state(self) -> RegistrationState:
        if self.stopped:
            return RegistrationState.STOPPED
        if self.stopping:
            return RegistrationState.STOPPING
        if self.active_slot is not None:
            return RegistrationState.REGISTERED
        if not self.started:
            return RegistrationState.IDLE
        main = self._main_attempt()
        if main is None:
            return RegistrationState.FAILED
        return {_Phase.RESOLVING: RegistrationState.RESOLVING,
                _Phase.CONNECTING: RegistrationState.CONNECTING}.get(main.phase, RegistrationState.REGISTERING)

    @property
    def active_target(self) -> Target | None:
        return self._bindings[self.active_slot].target if self.active_slot is not None else None

    @property
    def granted_expires(self) -> int | None:
        return self._bindings[self.active_slot].granted if self.active_slot is not None else None

    @property
    def expires_at(self) -> float | None:
        return self._bindings[self.active_slot].expires_at if self.active_slot is not None else None

    @property
    def refresh_at(self) -> float | None:
        return self._refresh_at

    @property
    def retry_at(self) -> float | None:
        return self._retry_at

    @property
    def probe_at(self) -> float | None:
        return self._probe_at

    # -- internals -----------------------------------------------------------------------

    def _main_attempt(self) -> _Attempt | None:
        for attempt in self._attempts.values():
            if attempt.phase is not _Phase.DONE and attempt.purpose in (_Purpose.REGISTER, _Purpose.REFRESH):
                return attempt
        return None

    def _machine_deadlines(self) -> list[float | None]:
        expiry = self.expires_at
        main = self._main_attempt()
        return [self._retry_at, self._probe_at,
                self._refresh_at if main is None or main.slot != self.active_slot else None,
                expiry]

    def _machine_timer(self, now: float) -> None:
        if self.stopping or self.stopped:
            return
        if self.active_slot is not None:
            b = self._bindings[self.active_slot]
            if b.expires_at is not None and now >= b.expires_at:
                slot = self.active_slot
                self._unbound(b)
                self.active_slot = None
                self._refresh_at = None
                self._probe_at = None
                self._emit(Expired(slot))
                if self._main_attempt() is None:
                    self._new_round(now)
                return
        if self._refresh_at is not None and now >= self._refresh_at and self.active_slot is not None:
            self._refresh_at = None
            self._start_attempt(self.active_slot, _Purpose.REFRESH, now)
        if self._probe_at is not None and now >= self._probe_at:
            self._probe_at = None
            self._probe_tried = ()
            self._probe_next(now)
        if self._retry_at is not None and now >= self._retry_at and self.active_slot is None:
            self._retry_at = None
            self._new_round(now)

    def _new_round(self, now: float) -> None:
        self._round_tried = ()
        self._retry_at = None
        self._try_next_slot(None, None, now)

    def _try_next_slot(self, failed_slot: int | None, why: ResultKind | None, now: float) -> None:
        order = self.config.slots
        if failed_slot is not None and failed_slot in order:
            i = order.index(failed_slot)
            order = order[i + 1:] + order[:i]
        earliest_avoid: float | None = None
        for slot in order:
            if slot in self._round_tried:
                continue
            until = self._slot_avoided_until(slot, now)
            if until is not None:
                earliest_avoid = until if earliest_avoid is None else min(earliest_avoid, until)
                continue
            self._round_tried += (slot,)
            if failed_slot is not None:
                self._emit(FailedOver(failed_slot, slot, why))  # type: ignore[arg-type]
            self._start_attempt(slot, _Purpose.REGISTER, now)
            return
        # every set failed (or is avoided): wait and start over from the first
        self._failed_rounds += 1
        delay = min(self.policy.retry_base * 2 ** (self._failed_rounds - 1), self.policy.retry_max)
        at = now + self._jittered(delay)
        if earliest_avoid is not None and len(self._round_tried) == 0:
            at = max(at, earliest_avoid)
        self._retry_at = at

    def _attempt_finished(self, attempt: _Attempt, result: AttemptResult, now: float) -> None:
        slot = attempt.slot
        if self._attempts.get(slot) is attempt:
            del self._attempts[slot]
        if attempt.purpose in (_Purpose.REGISTER, _Purpose.REFRESH):
            self.last_result = result
            self.last_status = result.status
            self.last_kind = result.kind
            if result.rtt is not None:
                self.last_rtt = result.rtt
            if result.ok:
                self.last_success_at = now
            else:
                self.last_error = result
        if attempt.purpose is _Purpose.UNREGISTER:
            self._unregister_finished(attempt, result, now)
            return
        if attempt.purpose is _Purpose.PROBE:
            self._probe_finished(attempt, result, now)
            return
        b = attempt.binding
        if result.kind is ResultKind.REGISTERED:
            self._release(slot, attempt.connected)
            self.active_slot = slot
            self._failed_rounds = 0
            self._round_tried = ()
            self._retry_at = None
            self._schedule_refresh(b, now)
            self._emit(Registered(slot, result.target, result.expires, result.rtt, result.status))  # type: ignore[arg-type]
            if self._probe_at is None and not any(a.purpose is _Purpose.PROBE for a in self._attempts.values()):
                self._probe_tried = ()
                self._schedule_probe(now)
            return
        # a failed REGISTER / REFRESH
        was_active = self.active_slot == slot
        if was_active:
            self._unbound(b)
            self.active_slot = None
            self._refresh_at = None
            self._probe_at = None
            for other in list(self._attempts.values()):
                if other.purpose is _Purpose.PROBE:
                    other.abandon()
                    del self._attempts[other.slot]
                    self._release(other.slot, other.connected)
        self._release(slot, attempt.connected)
        self._emit(RegistrationFailed(slot, result.target, result.kind, result.status, result.detail))
        if result.kind in FINAL_KINDS:
            self._retry_at = now + self._jittered(self.policy.rejected_retry)
            self._round_tried = ()
            return
        if attempt.purpose is _Purpose.REFRESH:
            self._round_tried = (slot,)  # a new round, starting after the set that failed
        self._try_next_slot(slot, result.kind, now)

    def _schedule_refresh(self, b: _Binding, now: float) -> None:
        sent_at = b.expires_at - b.granted  # type: ignore[operator]
        self._refresh_at = max(now, sent_at + self._jittered(self.policy.refresh_delay(b.granted)))  # type: ignore[arg-type,operator]

    def _probe_candidates(self, now: float) -> list[int]:
        if self.active_slot is None:
            return []
        order = self.config.slots
        return [s for s in order[:order.index(self.active_slot)]
                if self._slot_avoided_until(s, now) is None]

    def _schedule_probe(self, now: float, delay: float | None = None) -> None:
        if self.active_slot is None or self.active_slot == self.config.slots[0]:
            self._probe_at = None
            return
        if delay is None:
            delay = self.policy.probe_interval
        at = now + self._jittered(delay)
        # a preferred set that asked us to wait: not before it allows
        order = self.config.slots
        ends = [self._slot_avoided_until(s, now) for s in order[:order.index(self.active_slot)]]
        if ends and all(e is not None for e in ends):
            at = max(at, min(ends))  # type: ignore[assignment,type-var]
        self._probe_at = at

    def _probe_next(self, now: float) -> None:
        for slot in self._probe_candidates(now):
            if slot in self._probe_tried or slot in self._attempts:
                continue
            self._probe_tried += (slot,)
            self._start_attempt(slot, _Purpose.PROBE, now)
            return
        self._schedule_probe(now)

    def _probe_finished(self, attempt: _Attempt, result: AttemptResult, now: float) -> None:
        slot = attempt.slot
        if result.kind is ResultKind.REGISTERED and self.active_slot is not None:
            old = self.active_slot
            self.last_result, self.last_status, self.last_kind = result, result.status, result.kind
            self.last_rtt, self.last_success_at = result.rtt, now
            self.active_slot = slot
            self._schedule_refresh(attempt.binding, now)
            self._release(slot, attempt.connected)
            self._emit(FailedBack(old, slot))
            self._emit(Registered(slot, result.target, result.expires, result.rtt, result.status))  # type: ignore[arg-type]
            main = self._attempts.get(old)
            if main is not None:
                main.abandon()
                del self._attempts[old]
            self._bindings[old].registered = False  # no longer ours to refresh
            self._start_attempt(old, _Purpose.UNREGISTER, now)
            self._probe_tried = ()
            self._schedule_probe(now)
            return
        self._release(slot, attempt.connected)
        self._emit(RegistrationFailed(slot, result.target, result.kind, result.status, result.detail, probe=True))
        if result.kind in FINAL_KINDS:
            self._schedule_probe(now, delay=self.policy.rejected_retry)
            return
        self._probe_next(now)

    def _unregister_finished(self, attempt: _Attempt, result: AttemptResult, now: float) -> None:
        b = attempt.binding
        if result.kind is ResultKind.UNREGISTERED:
            b.bound = []
        self._unbound(b)
        self._release(attempt.slot, attempt.connected | ({b.target} if b.target else set()))
        b.target = None
        self._emit(Unregistered(attempt.slot, result.target, result.ok, result.kind, result.status))
        if self.stopping and not any(a.phase is not _Phase.DONE for a in self._attempts.values()):
            self._finish_stop()

    def _idle_transport_error(self, slot: int, target: Target, kind: ResultKind, now: float) -> None:
        if self.stopping or self.stopped:
            return
        b = self._bindings.get(slot)
        if (b is not None and slot == self.active_slot and target == b.target
                and target.transport.reliable and slot not in self._attempts):
            self._refresh_at = None
            self._start_attempt(slot, _Purpose.REFRESH, now)

    def _stop(self, now: float) -> None:
        if self.stopping or self.stopped:
            return
        self.stopping = True
        self._refresh_at = self._probe_at = self._retry_at = None
        to_unregister: list[int] = []
        for slot, attempt in list(self._attempts.items()):
            if attempt.purpose is _Purpose.UNREGISTER:
                continue  # already on its way
            if attempt.in_flight or attempt.binding.registered:
                to_unregister.append(slot)
                attempt.binding.target = attempt.target
            else:
                self._release(slot, attempt.connected)
            attempt.abandon()
            del self._attempts[slot]
        for slot, b in self._bindings.items():
            if b.registered and slot not in to_unregister:
                to_unregister.append(slot)
        self.active_slot = None
        for slot in sorted(to_unregister):
            b = self._bindings[slot]
            if b.contact is not None and not any(c.equivalent(b.contact) for c in b.bound):
                b.bound.append(b.contact)
            self._start_attempt(slot, _Purpose.UNREGISTER, now)
        if not any(a.phase is not _Phase.DONE for a in self._attempts.values()):
            self._finish_stop()

    def _finish_stop(self) -> None:
        self.stopping = False
        self.stopped = True
        self._attempts.clear()
        self._emit(Stopped())


class RegistrationCheck(_Engine):
    """Register once on each server set, un-register, report per set (``sipphones check``).

    ``all_slots=False`` stops at the first set that registers (the failover view); the sets
    after it are reported as ``not_tried``. Results are in :attr:`results` once
    :class:`CheckFinished` was emitted (state ``stopped``).
    """

    def __init__(self, config: RegistrationConfig, *, rng: RandomSource,
                 policy: RegistrationPolicy = RegistrationPolicy(), all_slots: bool = True):
        super().__init__(config, rng=rng, policy=policy)
        self.all_slots = all_slots
        self._pending: list[int] = list(config.slots)
        self._results: dict[int, SlotResult] = {}
        self._register_results: dict[int, AttemptResult] = {}
        self.current_slot: int | None = None

    def start(self, now: float) -> list[Output]:
        def run() -> None:
            if self.started or self.stopped:
                return
            self.started = True
            self._next(now)
        return self._call(now, run)

    def stop(self, now: float) -> list[Output]:
        """Abandon the check: un-register what may be bound, report the rest as not tried."""
        return self._call(now, lambda: self._stop(now))

    def abort(self, now: float) -> list[Output]:
        """End the check at once, without un-REGISTER (its deadline passed, a stop included):
        the set in progress is a ``timeout``, the sets not reached are ``not_tried``."""
        return self._call(now, lambda: self._abort(now))

    def _abort(self, now: float) -> None:
        if self.stopped:
            return
        self._pending = []
        for slot, attempt in list(self._attempts.items()):
            cut = attempt._failure(ResultKind.TIMEOUT, now, detail="the check's deadline passed")
            attempt.abandon()
            del self._attempts[slot]
            b = attempt.binding
            self._unbound(b)
            self._release(slot, attempt.connected | ({b.target} if b.target else set()))
            registered = self._register_results.pop(slot, None)
            if registered is not None:   # cut during the un-REGISTER
                self._record(slot, registered, cut)
            else:
                self._record(slot, cut, None)
        self._finish()

    def _stop(self, now: float) -> None:
        if self.stopped or self.stopping:
            return
        self._pending = []
        attempt = self._attempts.get(self.current_slot) if self.current_slot is not None else None
        if attempt is None:
            self._finish()
            return
        self.stopping = True
        if attempt.purpose is _Purpose.UNREGISTER:
            return  # already cleaning up; its end finishes the check
        slot, b = attempt.slot, attempt.binding
        in_flight = attempt.in_flight
        interrupted = attempt._failure(ResultKind.NOT_TRIED, now, detail="check stopped")
        attempt.abandon()
        del self._attempts[slot]
        if in_flight:  # the registrar may bind what we sent: take it back
            b.target = attempt.target
            b.bound = [b.contact] if b.contact is not None else []
            self._register_results[slot] = interrupted
            self._start_attempt(slot, _Purpose.UNREGISTER, now)
            return
        self._release(slot, attempt.connected)
        self._record(slot, interrupted, None)
        self._finish()

    @property
    def state(self) -> RegistrationState:
        if self.stopped:
            return RegistrationState.STOPPED
        if not self.started:
            return RegistrationState.IDLE
        attempt = self._attempts.get(self.current_slot) if self.current_slot is not None else None
        if attempt is None:
            return RegistrationState.STOPPING if self.stopping else RegistrationState.FAILED
        if attempt.purpose is _Purpose.UNREGISTER:
            return RegistrationState.STOPPING
        return {_Phase.RESOLVING: RegistrationState.RESOLVING,
                _Phase.CONNECTING: RegistrationState.CONNECTING}.get(attempt.phase, RegistrationState.REGISTERING)

    @property
    def results(self) -> list[SlotResult]:
        return [self._results[s] for s in self.config.slots if s in self._results]

    @property
    def finished(self) -> bool:
        return self.stopped

    def _next(self, now: float) -> None:
        while self._pending:
            slot = self._pending.pop(0)
            self.current_slot = slot
            self._start_attempt(slot, _Purpose.REGISTER, now)
            return
        self._finish()

    def _record(self, slot: int, result: AttemptResult, unregister: AttemptResult | None) -> None:
        server = self._bindings[slot].server
        self._results[slot] = SlotResult(
            slot=slot, server=str(server.next_hop), transport=server.transport, kind=result.kind,
            status=result.status, reason=result.reason, target=result.target, rtt=result.rtt,
            expires=result.expires, elapsed=result.elapsed, detail=result.detail, unregister=unregister)

    def _attempt_finished(self, attempt: _Attempt, result: AttemptResult, now: float) -> None:
        slot = attempt.slot
        if self._attempts.get(slot) is attempt:
            del self._attempts[slot]
        if attempt.purpose is _Purpose.REGISTER:
            self.last_result = result
            if result.kind is ResultKind.REGISTERED:
                self._register_results[slot] = result
                self._start_attempt(slot, _Purpose.UNREGISTER, now)
                return
            self._release(slot, attempt.connected)
            self._record(slot, result, None)
        else:  # UNREGISTER after a registration (or after a stop mid-flight)
            b = attempt.binding
            if result.kind is ResultKind.UNREGISTERED:
                b.bound = []
            self._unbound(b)
            self._release(slot, attempt.connected | ({b.target} if b.target else set()))
            registered = self._register_results.pop(slot)
            self._record(slot, registered, result)
            if registered.kind is ResultKind.REGISTERED and not self.all_slots:
                self._pending = []
        if self.stopping:
            self._finish()
        else:
            self._next(now)

    def _finish(self) -> None:
        if self.stopped:
            return
        for slot in self.config.slots:
            if slot not in self._results:
                server = self._bindings[slot].server
                self._results[slot] = SlotResult(slot=slot, server=str(server.next_hop),
                                                 transport=server.transport, kind=ResultKind.NOT_TRIED)
        self.current_slot = None
        self.stopping = False
        self.stopped = True
        self._emit(CheckFinished(tuple(self.results)))
