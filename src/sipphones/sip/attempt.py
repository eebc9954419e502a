"""One REGISTER sequence of a registration machine on one server set: the binding it keeps per
set (Call-ID, tags, CSeq, credentials) and the attempt that resolves, connects, sends, answers
challenges and 423s, and moves over the set's targets (rules: ``sipphones.sip.registration``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from sipphones.sip.digest import DigestClient
from sipphones.sip.config import ServerSetConfig, Target, TargetTransport
from sipphones.sip.errors import BadHeaderValue, DigestError
from sipphones.sip.headers import granted_expires, min_expires, retry_after
from sipphones.sip.syntax import DIGITS_RE, SIMPLE_PARAMS_RE, parse_delta_seconds
from sipphones.sip.uri import SipUri, parse_contacts
from sipphones.sip.message import Response
from sipphones.sip.transaction import FinalResponse, NonInviteClientTransaction, TransactionTimeout, Transmit

from sipphones.sip.events import ResultKind, NEXT_TARGET_KINDS, Resolve, Connect, Send, RetryAfterCapped, AttemptResult

if TYPE_CHECKING:
    from sipphones.sip.engine import Engine

__all__ = [
    "Purpose",
    "Phase",
    "Binding",
    "Attempt",
]


# --- internals --------------------------------------------------------------------------------


class Purpose(StrEnum):
    REGISTER = "register"
    REFRESH = "refresh"
    PROBE = "probe"
    UNREGISTER = "unregister"


class Phase(StrEnum):
    RESOLVING = "resolving"
    CONNECTING = "connecting"
    WAITING = "waiting"
    DONE = "done"


@dataclass
class Binding:
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


class Attempt:
    """One REGISTER sequence on one set: resolve, connect, send, answer challenges, conclude."""

    def __init__(self, engine: "Engine", binding: Binding, purpose: Purpose, now: float):
        self.engine = engine
        self.binding = binding
        self.purpose = purpose
        self.started_at = now
        self.phase = Phase.RESOLVING
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
        self.expires = 0 if purpose is Purpose.UNREGISTER else binding.expires
        if not engine.policy.reuse_credentials:
            binding.auth.forget()

    @property
    def slot(self) -> int:
        return self.binding.slot

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, now: float) -> None:
        b = self.binding
        if self.purpose in (Purpose.REFRESH, Purpose.UNREGISTER) and b.target is not None:
            # Stay on the target the binding lives on; a refresh may fall back to the set's
            # other targets, an un-REGISTER only makes sense where the binding is.
            others = [t for t in (b.targets or []) if t != b.target]
            self.targets = [b.target] + (others if self.purpose is Purpose.REFRESH else [])
            self._next_target(now)
            return
        static = b.server.static_targets()
        if static is not None:
            b.targets = static
            self.targets = list(static)
            self._next_target(now)
            return
        hop = b.server.next_hop
        self.phase = Phase.RESOLVING
        self.deadline = now + self.engine.policy.resolve_timeout
        self.engine._emit(Resolve(self.slot, hop.host, hop.port, b.server.transport))

    def on_resolved(self, targets: list[Target], now: float) -> None:
        if self.phase is not Phase.RESOLVING:
            return
        if not targets:
            self._finish(self._failure(ResultKind.DNS_ERROR, now, detail="no address found"), now)
            return
        self.binding.targets = list(targets)
        self.targets = list(targets)
        self._next_target(now)

    def on_resolve_failed(self, detail: str, now: float) -> None:
        if self.phase is Phase.RESOLVING:
            self._finish(self._failure(ResultKind.DNS_ERROR, now, detail=detail), now)

    def on_connected(self, target: Target, local_host: str, local_port: int, now: float) -> None:
        if self.phase is not Phase.CONNECTING or target != self.target:
            return
        self.local = (local_host, local_port)
        self._send_register(now)

    def on_transport_error(self, target: Target, kind: ResultKind, detail: str, now: float) -> bool:
        """Returns False when the error is not about this attempt's current flow."""
        if self.phase not in (Phase.CONNECTING, Phase.WAITING) or target != self.target:
            return False
        if self.tx is not None:
            self.tx.transport_error(now)
        self._target_failed(self._failure(kind, now, detail=detail), now)
        return True

    def on_response(self, response: Response, now: float) -> None:
        """A response whose key matched this attempt's transaction (see ``Engine.receive``)."""
        if self.tx is None or self.phase is not Phase.WAITING:
            return
        for event in self.tx._receive_matched(response, now):
            if isinstance(event, FinalResponse):
                self._on_final(event.response, event.rtt, now)

    def on_timer(self, now: float) -> None:
        if self.budget_at is not None and now >= self.budget_at and self.phase is not Phase.RESOLVING:
            self.budget_at = None
            budget = self.engine.policy.sequence_budget
            self._target_failed(self._failure(ResultKind.TIMEOUT, now,
                                              detail=f"no result within the {budget:g} s allowed per server"), now)
            return
        if self.phase in (Phase.RESOLVING, Phase.CONNECTING):
            if self.deadline is not None and now >= self.deadline:
                if self.phase is Phase.RESOLVING:
                    self._finish(self._failure(ResultKind.DNS_ERROR, now, detail="resolution timed out"), now)
                else:
                    self._target_failed(self._failure(ResultKind.TIMEOUT, now, detail="connection timed out"), now)
            return
        if self.phase is Phase.WAITING and self.tx is not None:
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
        if budget_at is None or self.phase is Phase.DONE:
            return deadline
        return budget_at if deadline is None or budget_at < deadline else deadline

    def _step_deadline(self) -> float | None:
        if self.phase in (Phase.RESOLVING, Phase.CONNECTING):
            return self.deadline
        if self.phase is Phase.WAITING and self.tx is not None:
            # Timer K is not waited for (see the module docstring).
            if self.tx.final_response is not None:
                return None
            return self.tx.next_deadline
        return None

    @property
    def in_flight(self) -> bool:
        """A REGISTER has been sent whose outcome is unknown."""
        return (self.phase is Phase.WAITING and self.tx is not None
                and self.tx.final_response is None)

    def abandon(self) -> None:
        self._drop_tx()
        self.phase = Phase.DONE

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
        self.phase = Phase.CONNECTING
        self.deadline = now + self.engine.policy.timers.response_timeout
        self.connected.add(target)
        self.engine._emit(Connect(self.slot, target))

    def _send_register(self, now: float) -> None:
        self._drop_tx()
        request = self.engine._build_register(self, now)
        self.tx = NonInviteClientTransaction(request, reliable=self.target.transport.reliable,  # type: ignore[union-attr]
                                             timers=self.engine.policy.timers)
        self.phase = Phase.WAITING
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
        if failure.kind in NEXT_TARGET_KINDS and self.index + 1 < len(self.targets):
            self._next_target(now)
        else:
            self._finish(failure, now)

    def _on_final(self, response: Response, rtt: float, now: float) -> None:
        status = response.status
        b = self.binding
        sent_at = self.tx.sent_at if self.tx is not None else now
        self._drop_tx()
        if 200 <= status < 300:
            if self.purpose is Purpose.UNREGISTER:
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
        if self.phase is Phase.DONE:
            return
        self._drop_tx()
        self.phase = Phase.DONE
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
    if not rest or SIMPLE_PARAMS_RE.fullmatch(rest) is None:
        return None
    for part in rest[1:].split(";"):
        name, eq, value = part.partition("=")
        if name.lower() == "expires":   # the first one counts, as in the parameter dict
            if eq and DIGITS_RE.fullmatch(value):
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
