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


from sipphones.sip.config import RegistrationConfig, RegistrationPolicy, Target
from sipphones.sip.headers import granted_expires

from sipphones.sip.events import RandomSource, RegistrationState, ResultKind, FINAL_KINDS, SetTimer, Registered, RegistrationFailed, FailedOver, FailedBack, Expired, Unregistered, Stopped, Output, AttemptResult
from sipphones.sip.attempt import Purpose, Phase, Binding, Attempt
from sipphones.sip.engine import Engine

__all__ = [
    "Registration",
]


class Registration(Engine):
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
        return {Phase.RESOLVING: RegistrationState.RESOLVING,
                Phase.CONNECTING: RegistrationState.CONNECTING}.get(main.phase, RegistrationState.REGISTERING)

    @property
    def active_target(self) -> Target | None:
        return self._bindings[self.active_slot].target if self.active_slot is not None else None

    @property
    def active_contact(self) -> str | None:
        """The Contact the registrar holds for the active set (None while not registered)."""
        if self.active_slot is None:
            return None
        contact = self._bindings[self.active_slot].contact
        return str(contact) if contact is not None else None

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

    def _main_attempt(self) -> Attempt | None:
        for attempt in self._attempts.values():
            if attempt.phase is not Phase.DONE and attempt.purpose in (Purpose.REGISTER, Purpose.REFRESH):
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
            self._start_attempt(self.active_slot, Purpose.REFRESH, now)
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
            self._start_attempt(slot, Purpose.REGISTER, now)
            return
        # every set failed (or is avoided): wait and start over from the first
        self._failed_rounds += 1
        delay = min(self.policy.retry_base * 2 ** (self._failed_rounds - 1), self.policy.retry_max)
        at = now + self._jittered(delay)
        if earliest_avoid is not None and len(self._round_tried) == 0:
            at = max(at, earliest_avoid)
        self._retry_at = at

    def _attempt_finished(self, attempt: Attempt, result: AttemptResult, now: float) -> None:
        slot = attempt.slot
        if self._attempts.get(slot) is attempt:
            del self._attempts[slot]
        if attempt.purpose in (Purpose.REGISTER, Purpose.REFRESH):
            self.last_result = result
            self.last_status = result.status
            self.last_kind = result.kind
            if result.rtt is not None:
                self.last_rtt = result.rtt
            if result.ok:
                self.last_success_at = now
            else:
                self.last_error = result
        if attempt.purpose is Purpose.UNREGISTER:
            self._unregister_finished(attempt, result, now)
            return
        if attempt.purpose is Purpose.PROBE:
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
            if self._probe_at is None and not any(a.purpose is Purpose.PROBE for a in self._attempts.values()):
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
                if other.purpose is Purpose.PROBE:
                    other.abandon()
                    del self._attempts[other.slot]
                    self._release(other.slot, other.connected)
        self._release(slot, attempt.connected)
        self._emit(RegistrationFailed(slot, result.target, result.kind, result.status, result.detail))
        if result.kind in FINAL_KINDS:
            self._retry_at = now + self._jittered(self.policy.rejected_retry)
            self._round_tried = ()
            return
        if attempt.purpose is Purpose.REFRESH:
            self._round_tried = (slot,)  # a new round, starting after the set that failed
        self._try_next_slot(slot, result.kind, now)

    def _schedule_refresh(self, b: Binding, now: float) -> None:
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
            self._start_attempt(slot, Purpose.PROBE, now)
            return
        self._schedule_probe(now)

    def _probe_finished(self, attempt: Attempt, result: AttemptResult, now: float) -> None:
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
            self._start_attempt(old, Purpose.UNREGISTER, now)
            self._probe_tried = ()
            self._schedule_probe(now)
            return
        self._release(slot, attempt.connected)
        self._emit(RegistrationFailed(slot, result.target, result.kind, result.status, result.detail, probe=True))
        if result.kind in FINAL_KINDS:
            self._schedule_probe(now, delay=self.policy.rejected_retry)
            return
        self._probe_next(now)

    def _unregister_finished(self, attempt: Attempt, result: AttemptResult, now: float) -> None:
        b = attempt.binding
        if result.kind is ResultKind.UNREGISTERED:
            b.bound = []
        self._unbound(b)
        self._release(attempt.slot, attempt.connected | ({b.target} if b.target else set()))
        b.target = None
        self._emit(Unregistered(attempt.slot, result.target, result.ok, result.kind, result.status))
        if self.stopping and not any(a.phase is not Phase.DONE for a in self._attempts.values()):
            self._finish_stop()

    def _idle_transport_error(self, slot: int, target: Target, kind: ResultKind, now: float) -> None:
        if self.stopping or self.stopped:
            return
        b = self._bindings.get(slot)
        if (b is not None and slot == self.active_slot and target == b.target
                and target.transport.reliable and slot not in self._attempts):
            self._refresh_at = None
            self._start_attempt(slot, Purpose.REFRESH, now)

    def _stop(self, now: float) -> None:
        if self.stopping or self.stopped:
            return
        self.stopping = True
        self._refresh_at = self._probe_at = self._retry_at = None
        to_unregister: list[int] = []
        for slot, attempt in list(self._attempts.items()):
            if attempt.purpose is Purpose.UNREGISTER:
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
            self._start_attempt(slot, Purpose.UNREGISTER, now)
        if not any(a.phase is not Phase.DONE for a in self._attempts.values()):
            self._finish_stop()

    def _finish_stop(self) -> None:
        self.stopping = False
        self.stopped = True
        self._attempts.clear()
        self._emit(Stopped())
