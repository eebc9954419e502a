"""What both registration machines share (``sipphones.sip.registration``): bindings, attempts,
the routing of driver events, timers and the collection of outputs."""

from __future__ import annotations


from sipphones.sip.address import format_host
from sipphones.sip.digest import DigestClient
from sipphones.sip.config import RegistrationConfig, RegistrationPolicy, Target
from sipphones.sip.uri import SipUri
from sipphones.sip.message import Headers, Request, Response
from sipphones.sip.transaction import MAGIC_COOKIE, response_key

from sipphones.sip.events import RandomSource, ResultKind, Release, SetTimer, Output, AttemptResult, SlotStatus
from sipphones.sip.attempt import Purpose, Phase, Binding, Attempt

__all__ = [
    "Engine",
]


class Engine:
    """Bindings, attempts, routing of driver events, timers and output collection."""

    def __init__(self, config: RegistrationConfig, *, rng: RandomSource,
                 policy: RegistrationPolicy = RegistrationPolicy()):
        self.config = config
        self.policy = policy
        self._rng = rng
        self._bindings: dict[int, Binding] = {}
        for server in config.server_sets:
            auth = DigestClient(config.auth_username, config.password, cnonce_factory=self._cnonce)
            self._bindings[server.slot] = Binding(server=server, call_id=self._token(16),
                                                   from_tag=self._token(8), expires=config.expires,
                                                   auth=auth, bound=list(config.stale))
        self._attempts: dict[int, Attempt] = {}
        self._by_branch: dict[str, Attempt] = {}
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
            if attempt is not None and attempt.phase is not Phase.DONE:
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
                if deadline is not None and now >= deadline and attempt.phase is not Phase.DONE:
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
        if attempt is not None and attempt.phase is not Phase.DONE:
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

    def _start_attempt(self, slot: int, purpose: Purpose, now: float) -> Attempt:
        old = self._attempts.get(slot)
        if old is not None:
            old.abandon()
        attempt = Attempt(self, self._bindings[slot], purpose, now)
        self._attempts[slot] = attempt
        attempt.start(now)
        return attempt

    def _release(self, slot: int, targets) -> None:
        b = self._bindings[slot]
        for target in sorted(targets, key=str):
            if b.registered and target == b.target:
                continue
            self._emit(Release(slot, target))

    def _build_register(self, attempt: Attempt, now: float) -> Request:
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
        if attempt.purpose is Purpose.UNREGISTER:
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

    def _contact(self, b: Binding, host: str, port: int, target: Target) -> tuple[SipUri, str]:
        """Our Contact for a flow's local address and its ``<...>`` text, built again only when
        the address changes (the same object, so the bookkeeping compares by identity first)."""
        key = b.contact_for
        if (b.contact is not None and key is not None and key[0] is target.transport and key[1] == host
                and key[2] == port):
            return b.contact, b.contact_text
        uri = self._contact_uri(host, port, target)
        return uri, f"<{uri}>"

    def _bound(self, b: Binding, target: Target, granted: int, sent_at: float) -> None:
        """A 2xx to a REGISTER with our Contact: the registrar holds it until sent_at + granted."""
        b.registered = True
        b.target = target
        b.granted = granted
        b.expires_at = sent_at + granted
        b.bound = [b.contact] if b.contact is not None else []

    def _unbound(self, b: Binding) -> None:
        b.registered = False
        b.granted = None
        b.expires_at = None

    # -- for subclasses ------------------------------------------------------------------

    def _attempt_finished(self, attempt: Attempt, result: AttemptResult, now: float) -> None:
        raise NotImplementedError

    def _machine_deadlines(self) -> list[float | None]:
        return []

    def _machine_timer(self, now: float) -> None:
        pass

    def _idle_transport_error(self, slot: int, target: Target, kind: ResultKind, now: float) -> None:
        pass
