"""The non-INVITE client transaction of RFC 3261 §17.1.2, sans-IO.

The object is fed the current time and the responses that arrive; it answers with what to
transmit and what to tell the transaction user (TU), and says by :attr:`next_deadline` when it
next wants :meth:`timer` to be called. It never reads a clock or touches a socket.

State machine (RFC 3261 figure 6)::

    Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
      |                 |
      +---200-699-------+--> Completed
      +---Timer F / budget / transport error--> Terminated

* Over UDP, Timer E retransmits the request: first after T1, then doubling up to T2 while in
  Trying; once a provisional response arrived (Proceeding) every T2.
* Timer F (64·T1) ends the transaction with a timeout. The optional per-server ``budget`` of
  :class:`~sipphones.sip.config.TransactionTimers` ends it earlier, so a failover does not wait
  32 s; the timeout says which of the two fired.
* Over TCP/TLS nothing is retransmitted and Timer K is zero (the transaction terminates on the
  final response); over UDP Timer K = T4 keeps it in Completed to absorb retransmitted finals.
* A response belongs to the transaction when the ``branch`` of its top Via equals ours and its
  CSeq method equals ours (RFC 3261 §17.1.3); :meth:`matches` tests exactly that.

The round-trip time reported with the final response is measured from the first transmission
(with retransmissions it includes the waits; that is what an operator experiences).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sipphones.sip.config import TransactionTimers
from sipphones.sip.errors import ParseError
from sipphones.sip.headers import Via
from sipphones.sip.message import Headers, Request, Response

__all__ = [
    "TransactionState", "TimeoutCause", "Transmit", "ProvisionalResponse", "FinalResponse",
    "TransactionTimeout", "TransactionEvent", "NonInviteClientTransaction", "TransactionTimers",
    "response_key", "request_key", "top_via_branch", "MAGIC_COOKIE",
]

MAGIC_COOKIE = "z9hG4bK"


class TransactionState(StrEnum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class TimeoutCause(StrEnum):
    TIMER_F = "timer_f"   # RFC 3261 64·T1
    BUDGET = "budget"     # the operator's per-server budget, shorter than Timer F


# These records spell out the ``__init__`` that ``@dataclass`` would generate, so that mypyc
# compiles it (see "outputs" in sipphones.sip.registration; tests/sip/test_native_init.py checks them).


@dataclass(frozen=True)
class Transmit:
    """Hand this request to the transport (again, when ``retransmission``)."""

    request: Request
    retransmission: bool

    def __init__(self, request: Request, retransmission: bool) -> None:
        object.__setattr__(self, "request", request)
        object.__setattr__(self, "retransmission", retransmission)


@dataclass(frozen=True)
class ProvisionalResponse:
    response: Response

    def __init__(self, response: Response) -> None:
        object.__setattr__(self, "response", response)


@dataclass(frozen=True)
class FinalResponse:
    response: Response
    rtt: float

    def __init__(self, response: Response, rtt: float) -> None:
        object.__setattr__(self, "response", response)
        object.__setattr__(self, "rtt", rtt)


@dataclass(frozen=True)
class TransactionTimeout:
    cause: TimeoutCause
    elapsed: float

    def __init__(self, cause: TimeoutCause, elapsed: float) -> None:
        object.__setattr__(self, "cause", cause)
        object.__setattr__(self, "elapsed", elapsed)


TransactionEvent = Transmit | ProvisionalResponse | FinalResponse | TransactionTimeout


# The branch parameter inside the first Via value (before any comma): a regex instead of a full
# Via parse, because this runs for every message of every phone.
_TOP_BRANCH = re.compile(r"^[^,]*?;[ \t]*branch[ \t]*=[ \t]*([^;, \t]+)", re.IGNORECASE)


def top_via_branch(headers: Headers) -> str | None:
    """The branch of the topmost Via (RFC 3261 §17.1.3's transaction key), or None."""
    first = headers.get("Via")
    if first is None:
        return None
    branch = _branch_param(first)
    if branch is not None:
        return branch
    vias = headers.values("Via")  # unusual formatting: take the slow, exact path
    if not vias:
        return None
    try:
        return Via.parse(vias[0]).branch
    except ParseError:
        return None


def _branch_param(first: str) -> str | None:
    """``_TOP_BRANCH.match(first).group(1)``, or None when it does not match, with string
    searches (the lazy regex tried every position; this runs for every response received).

    The match cannot hold a comma (``[^,]*?`` before the ``;``, none of its other parts accepts
    one), so only the text before the first comma is read; for every ``;`` in it, first to last,
    the parameter must read ``[ \t]*branch[ \t]*=[ \t]*`` ("branch" in any case: no other
    character lower-cases to one of its letters, as for the regex's IGNORECASE) and at least one
    character of ``[^;, \t]``, which the value runs over.
    """
    comma = first.find(",")
    seg = first if comma < 0 else first[:comma]
    n = len(seg)
    i = seg.find(";")
    while i >= 0:
        j = i + 1
        while j < n and (seg[j] == " " or seg[j] == "\t"):
            j += 1
        if seg[j:j + 6].lower() == "branch":
            j += 6
            while j < n and (seg[j] == " " or seg[j] == "\t"):
                j += 1
            if j < n and seg[j] == "=":
                j += 1
                while j < n and (seg[j] == " " or seg[j] == "\t"):
                    j += 1
                k = n
                for stop in (";", " ", "\t"):
                    p = seg.find(stop, j, k)
                    if p >= 0:
                        k = p
                if k > j:
                    return seg[j:k]
        i = seg.find(";", i + 1)
    return None


def _cseq_method(headers) -> str | None:
    cseq = headers.get("CSeq")
    if cseq is None:
        return None
    parts = cseq.split()
    return parts[1].upper() if len(parts) == 2 else None


def response_key(response: Response) -> tuple[str, str] | None:
    """(top-Via branch, CSeq method) of a response: its transaction key (RFC 3261 §17.1.3)."""
    branch, method = top_via_branch(response.headers), _cseq_method(response.headers)
    if not branch or not method:
        return None
    return branch, method


def request_key(request: Request) -> tuple[str, str] | None:
    branch = top_via_branch(request.headers)
    if not branch:
        return None
    return branch, request.method.upper()


class NonInviteClientTransaction:
    """One non-INVITE request in flight. Construct it, then call :meth:`start`.

    The request must already carry its Via with an RFC 3261 branch (``z9hG4bK`` prefix).
    ``reliable`` is true over TCP/TLS.
    """

    __slots__ = ("request", "reliable", "timers", "branch", "method", "state", "sent_at",
                 "final_response", "rtt", "timeout", "_timer_e", "_e_interval", "_deadline_timeout",
                 "_timer_k", "transmissions")

    def __init__(self, request: Request, *, reliable: bool, timers: TransactionTimers = TransactionTimers()):
        key = request_key(request)
        if key is None or not key[0].startswith(MAGIC_COOKIE):
            raise ValueError("the request's top Via needs a branch starting with z9hG4bK")
        if request.method.upper() in ("INVITE", "ACK"):
            raise ValueError("INVITE and ACK do not use the non-INVITE client transaction")
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.branch, self.method = key
        self.state = TransactionState.TRYING
        self.sent_at: float | None = None
        self.final_response: Response | None = None
        self.rtt: float | None = None
        self.timeout: TransactionTimeout | None = None
        self.transmissions = 0
        self._timer_e: float | None = None
        self._e_interval = timers.t1
        self._deadline_timeout: float | None = None
        self._timer_k: float | None = None

    # --- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[TransactionEvent]:
        """Send the request for the first time and arm Timers E and F (and the budget)."""
        if self.sent_at is not None:
            raise RuntimeError("transaction already started")
        self.sent_at = now
        self.transmissions = 1
        if not self.reliable:
            self._timer_e = now + self.timers.t1
        self._deadline_timeout = now + self.timers.response_timeout
        return [Transmit(self.request, retransmission=False)]

    def matches(self, response: Response) -> bool:
        key = response_key(response)
        return key is not None and key == (self.branch, self.method)

    def receive(self, response: Response, now: float) -> list[TransactionEvent]:
        """Feed a response that :meth:`matches`; returns what the TU must learn (maybe nothing)."""
        if not self.matches(response):
            return []
        return self._receive_matched(response, now)

    def _receive_matched(self, response: Response, now: float) -> list[TransactionEvent]:
        """:meth:`receive` for a caller that already checked :meth:`matches`."""
        if self.sent_at is None:
            return []
        if self.state in (TransactionState.COMPLETED, TransactionState.TERMINATED):
            return []  # a retransmitted final response, absorbed
        if 100 <= response.status < 200:
            if self.state is TransactionState.TRYING:
                self.state = TransactionState.PROCEEDING
                # Timer E keeps its schedule; from now on it is reset to T2 when it fires.
            return [ProvisionalResponse(response)]
        if not 200 <= response.status < 700:
            return []
        self.final_response = response
        self.rtt = now - self.sent_at
        self._timer_e = None
        self._deadline_timeout = None
        if self.reliable:
            self.state = TransactionState.TERMINATED
        else:
            self.state = TransactionState.COMPLETED
            self._timer_k = now + self.timers.t4
        return [FinalResponse(response, self.rtt)]

    def timer(self, now: float) -> list[TransactionEvent]:
        """Fire every timer due at ``now`` (calling early or late is harmless)."""
        if self.sent_at is None or self.state is TransactionState.TERMINATED:
            return []
        if self.state is TransactionState.COMPLETED:
            if self._timer_k is not None and now >= self._timer_k:
                self._timer_k = None
                self.state = TransactionState.TERMINATED
            return []
        if self._deadline_timeout is not None and now >= self._deadline_timeout:
            elapsed = now - self.sent_at
            budget = self.timers.budget
            cause = (TimeoutCause.BUDGET if budget is not None and budget < self.timers.timer_f
                     else TimeoutCause.TIMER_F)
            self.timeout = TransactionTimeout(cause, elapsed)
            self.state = TransactionState.TERMINATED
            self._timer_e = self._deadline_timeout = None
            return [self.timeout]
        if self._timer_e is not None and now >= self._timer_e:
            if self.state is TransactionState.TRYING:
                self._e_interval = min(2 * self._e_interval, self.timers.t2)
            else:
                self._e_interval = self.timers.t2
            self._timer_e = now + self._e_interval
            self.transmissions += 1
            return [Transmit(self.request, retransmission=True)]
        return []

    def transport_error(self, now: float) -> None:
        """The transport could not deliver the request (RFC 3261 §17.1.4): terminate."""
        self.state = TransactionState.TERMINATED
        self._timer_e = self._deadline_timeout = self._timer_k = None

    def terminate(self) -> None:
        """Abandon the transaction (its TU lost interest); later responses are ignored."""
        self.transport_error(0.0)

    # --- outputs --------------------------------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        """When :meth:`timer` must next be called, or ``None`` when no timer runs."""
        if self.state is TransactionState.TERMINATED:
            return None
        if self.state is TransactionState.COMPLETED:
            return self._timer_k
        candidates = [t for t in (self._timer_e, self._deadline_timeout) if t is not None]
        return min(candidates) if candidates else None

    @property
    def response_deadline(self) -> float | None:
        """When the wait for a final response ends (Timer F or budget); ``None`` once answered."""
        return self._deadline_timeout

    @property
    def done(self) -> bool:
        """True once the TU has its answer: a final response, a timeout or a transport error."""
        return self.final_response is not None or self.state is TransactionState.TERMINATED
