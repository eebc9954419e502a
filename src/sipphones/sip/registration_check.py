"""The registration check's machine: register once on each server set, un-register, report per
set (``sipphones check``; the rules are in ``sipphones.sip.registration``)."""

from __future__ import annotations


from sipphones.sip.config import RegistrationConfig, RegistrationPolicy

from sipphones.sip.events import RandomSource, RegistrationState, ResultKind, CheckFinished, Output, AttemptResult, SlotResult
from sipphones.sip.attempt import Purpose, Phase, Attempt
from sipphones.sip.engine import Engine

__all__ = [
    "RegistrationCheck",
]


class RegistrationCheck(Engine):
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
        if attempt.purpose is Purpose.UNREGISTER:
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
            self._start_attempt(slot, Purpose.UNREGISTER, now)
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
        if attempt.purpose is Purpose.UNREGISTER:
            return RegistrationState.STOPPING
        return {Phase.RESOLVING: RegistrationState.RESOLVING,
                Phase.CONNECTING: RegistrationState.CONNECTING}.get(attempt.phase, RegistrationState.REGISTERING)

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
            self._start_attempt(slot, Purpose.REGISTER, now)
            return
        self._finish()

    def _record(self, slot: int, result: AttemptResult, unregister: AttemptResult | None) -> None:
        server = self._bindings[slot].server
        self._results[slot] = SlotResult(
            slot=slot, server=str(server.next_hop), transport=server.transport, kind=result.kind,
            status=result.status, reason=result.reason, target=result.target, rtt=result.rtt,
            expires=result.expires, elapsed=result.elapsed, detail=result.detail, unregister=unregister)

    def _attempt_finished(self, attempt: Attempt, result: AttemptResult, now: float) -> None:
        slot = attempt.slot
        if self._attempts.get(slot) is attempt:
            del self._attempts[slot]
        if attempt.purpose is Purpose.REGISTER:
            self.last_result = result
            if result.kind is ResultKind.REGISTERED:
                self._register_results[slot] = result
                self._start_attempt(slot, Purpose.UNREGISTER, now)
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
