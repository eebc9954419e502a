"""The fleet: :class:`RegistrationAgent` keeps many phones registered in one process.

Scale: it holds one machine + one runner per phone and nothing else per phone: no task while
idle, one timer entry, and the flows (sockets) are shared per target by the
:class:`~sipphones.sipio.manager.TransportManager`. Ten thousand phones on one registrar are ten
thousand small objects, one timer queue, and one UDP socket (or one TCP/TLS connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from sipphones.phones.models import SipPhone
from sipphones.registration_config import registration_config
from sipphones.sip.config import DEFAULT_USER_AGENT, RegistrationConfig, RegistrationPolicy
from sipphones.sip.events import (
    Expired,
    Registered,
    RegistrationFailed,
    RegistrationState,
    Report,
    Stopped,
)
from sipphones.sip.registration import Registration

from sipphones._mypyc import mypyc_attr

from .runner import MachineRunner
from .stack import SipStack

__all__ = ["RegistrationAgent", "PhoneStatus", "AgentEvent"]

log = logging.getLogger(__name__)



# Its ``__init__`` is the one ``@dataclass`` would generate, spelled out so that mypyc compiles it
# (see "outputs" in sipphones.sip.events; tests/sip/test_native_init.py checks it).
@dataclass(frozen=True)
class AgentEvent:
    """A report of one phone's machine, stamped with the wall-clock time it happened."""

    phone_id: str
    report: Report
    at: float

    def __init__(self, phone_id: str, report: Report, at: float) -> None:
        object.__setattr__(self, "phone_id", phone_id)
        object.__setattr__(self, "report", report)
        object.__setattr__(self, "at", at)


@dataclass(frozen=True)
class PhoneStatus:
    """Where one phone's registration stands (times are wall-clock seconds since the epoch)."""

    phone_id: str
    state: RegistrationState
    registered: bool
    slot: int | None
    target: str | None
    transport: str | None
    expires: int | None          # granted seconds of the current binding
    expires_at: float | None
    last_kind: str | None
    last_status: int | None
    last_detail: str
    last_success_at: float | None
    last_error_at: float | None
    last_error: str
    contact: str | None = None   # our Contact the registrar holds (None while not registered)


class _AgentPhone:
    __slots__ = ("agent", "phone_id", "config", "runner", "stopped", "last_success_at", "last_error_at",
                 "last_error", "waiting", "first_pending")

    def __init__(self, agent: "RegistrationAgent", phone_id: str, config: RegistrationConfig):
        self.agent = agent
        self.phone_id = phone_id
        self.config = config
        self.runner: MachineRunner | None = None
        self.stopped: asyncio.Future | None = None   # created when the phone is being stopped
        self.last_success_at: float | None = None
        self.last_error_at: float | None = None
        self.last_error = ""
        self.waiting = True           # queued, not started yet
        self.first_pending = False    # started, first REGISTER outcome not known yet

    def __call__(self, report: Report) -> None:
        """The runner's ``on_report``: the entry itself (no closure or bound method per phone,
        one object less for the collector to visit)."""
        self.agent._report(self, report)


@mypyc_attr(allow_interpreted_subclasses=True)   # subclassed by monitor.service._Agent
class RegistrationAgent:
    """Keeps many phones registered in one process (the monitor's engine).

    ``add(phone)`` starts keeping a phone registered; ``await remove(id)`` un-registers it;
    ``await replace(phone)`` applies a changed record (un-REGISTER with the old one, register
    with the new one); ``await stop()`` un-registers everything. ``on_event`` gets every report
    (registered, failed, failed over/back, expired, unregistered, stopped) as an
    :class:`AgentEvent`. ``start_rate`` spreads first registrations (phones per second) so
    adding ten thousand phones does not send ten thousand REGISTERs in the same millisecond,
    and ``max_in_flight`` caps the phones whose first REGISTER (or, in :meth:`stop`, whose
    un-REGISTER) is still unanswered; refreshes are spread by the policy's jitter.
    """

    def __init__(self, stack: SipStack | None = None, *, policy: RegistrationPolicy = RegistrationPolicy(),
                 on_event: Callable[[AgentEvent], None] | None = None,
                 user_agent: str = DEFAULT_USER_AGENT, start_rate: float = 500.0,
                 max_in_flight: int = 200):
        self._own_stack = stack is None
        self.stack = stack or SipStack.create()
        self.policy = policy
        self.on_event = on_event
        self.user_agent = user_agent
        self.start_rate = start_rate
        self._phones: dict[str, _AgentPhone] = {}
        self.max_in_flight = max_in_flight
        self._next_start = 0.0
        self._waiting: deque[_AgentPhone] = deque()
        self._first_pending = 0
        self._pumping = False
        self._pump_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None   # see _running_loop
        self._closed = False

    async def __aenter__(self) -> "RegistrationAgent":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # --- phones ----------------------------------------------------------------------------

    def config_for(self, phone: SipPhone) -> RegistrationConfig:
        return registration_config(phone, user_agent=self.user_agent)

    def add(self, phone: SipPhone | RegistrationConfig, phone_id: str | None = None) -> None:
        """Start keeping the phone registered. Raises ``ConfigError`` for an unusable record and
        ``KeyError`` if the phone is already managed (use :meth:`replace`)."""
        if self._closed:
            raise RuntimeError("the agent is stopped")
        config = phone if isinstance(phone, RegistrationConfig) else self.config_for(phone)
        pid = phone_id or (phone.id if isinstance(phone, SipPhone) else config.phone_id) or config.aor
        if pid in self._phones:
            raise KeyError(f"phone {pid} is already registered by this agent")
        entry = _AgentPhone(self, pid, config)
        self._phones[pid] = entry
        self._waiting.append(entry)
        self._pump()

    def _pump(self) -> None:
        """Start queued phones: at most ``start_rate`` per second and at most
        ``max_in_flight`` whose first REGISTER is still unanswered, so a slow registrar
        slows the start-up down instead of drowning in retransmissions."""
        if self._pumping or self._closed:
            return
        self._pumping = True
        try:
            loop = self._running_loop()
            if self._pump_handle is not None:
                self._pump_handle.cancel()
                self._pump_handle = None
            step = 1.0 / self.start_rate if self.start_rate and self.start_rate > 0 else 0.0
            while self._waiting and self._first_pending < self.max_in_flight:
                now = loop.time()
                if step and self._next_start > now:
                    self._pump_handle = loop.call_at(self._next_start, self._pump)
                    return
                entry = self._waiting.popleft()
                if self._phones.get(entry.phone_id) is not entry or not entry.waiting:
                    continue
                self._next_start = max(now, self._next_start) + step
                entry.waiting = False
                entry.first_pending = True
                self._first_pending += 1
                self._start(entry)
        finally:
            self._pumping = False

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the agent runs on, asked from asyncio once (every runner and timer of the
        agent lives on it) instead of for every phone started."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _first_done(self, entry: _AgentPhone) -> None:
        if entry.first_pending:
            entry.first_pending = False
            self._first_pending -= 1
            self._pump()

    def _start(self, entry: _AgentPhone) -> None:
        machine = Registration(entry.config, rng=self.stack.rng, policy=self.policy)
        entry.runner = MachineRunner(self.stack, machine, name=entry.phone_id, on_report=entry,
                                     diagnostics=False, loop=self._running_loop())
        entry.runner.start()

    def _report(self, entry: _AgentPhone, report: Report) -> None:
        now = time.time()
        if isinstance(report, (Registered, RegistrationFailed, Stopped)):
            self._first_done(entry)
        if isinstance(report, Registered):
            entry.last_success_at = now
        elif isinstance(report, (RegistrationFailed, Expired)):
            entry.last_error_at = now
            kind = getattr(report, "kind", "expired")
            status = getattr(report, "status", None)
            detail = getattr(report, "detail", "")
            entry.last_error = " ".join(str(x) for x in (kind, status, detail) if x not in (None, ""))
        elif isinstance(report, Stopped):
            if entry.stopped is not None and not entry.stopped.done():
                entry.stopped.set_result(None)
        if self.on_event is not None:
            try:
                self.on_event(AgentEvent(entry.phone_id, report, now))
            except Exception:
                log.exception("agent event callback failed")

    async def remove(self, phone_id: str, *, timeout: float = 10.0) -> None:
        """Un-register the phone (bounded by ``timeout``) and stop managing it."""
        entry = self._phones.pop(phone_id, None)
        if entry is not None:
            await self._stop_entries([entry], timeout)

    async def replace(self, phone: SipPhone, *, timeout: float = 10.0) -> bool:
        """Apply a changed phone record; returns False when nothing relevant changed."""
        config = self.config_for(phone)
        old = self._phones.get(phone.id)
        if old is not None and old.config == config:
            return False
        await self.remove(phone.id, timeout=timeout)
        self.add(config, phone.id)
        return True

    def phone_ids(self) -> list[str]:
        return list(self._phones)

    def __len__(self) -> int:
        return len(self._phones)

    def __contains__(self, phone_id: object) -> bool:
        return phone_id in self._phones

    def status(self, phone_id: str) -> PhoneStatus:
        entry = self._phones[phone_id]
        loop = asyncio.get_running_loop()
        runner = entry.runner
        if runner is None:
            return PhoneStatus(phone_id, RegistrationState.IDLE, False, None, None, None, None, None,
                               None, None, "", entry.last_success_at, entry.last_error_at, entry.last_error)
        m: Registration = runner.machine  # type: ignore[assignment]
        target = m.active_target
        expires_at = m.expires_at
        last = m.last_result
        return PhoneStatus(
            phone_id=phone_id, state=m.state, registered=m.active_slot is not None, slot=m.active_slot,
            target=str(target) if target else None,
            transport=target.transport.value if target else None,
            expires=m.granted_expires,
            expires_at=(time.time() + (expires_at - loop.time())) if expires_at is not None else None,
            last_kind=str(last.kind) if last else None, last_status=last.status if last else None,
            last_detail=last.detail if last else "",
            last_success_at=entry.last_success_at, last_error_at=entry.last_error_at,
            last_error=entry.last_error, contact=m.active_contact)

    def statuses(self) -> Iterable[PhoneStatus]:
        for pid in list(self._phones):   # a generator function: mypyc would make a returned genexp a list
            yield self.status(pid)

    # --- stopping --------------------------------------------------------------------------

    async def _stop_entries(self, entries: list[_AgentPhone], timeout: float) -> None:
        """Un-register ``entries`` with at most ``max_in_flight`` un-REGISTERs outstanding (a
        burst of ten thousand overflows socket buffers and only causes retransmissions), wait
        up to ``timeout``, then drop them."""
        queue: deque[_AgentPhone] = deque()
        waits = []
        for entry in entries:
            entry.waiting = False
            if entry.first_pending:
                entry.first_pending = False
                self._first_pending -= 1
            if entry.runner is None:
                continue
            if entry.stopped is None and not entry.runner.closed:
                entry.stopped = asyncio.get_running_loop().create_future()
            queue.append(entry)
            if entry.stopped is not None and not entry.stopped.done():
                waits.append(entry.stopped)
        in_flight = 0

        def launch(_done=None) -> None:
            nonlocal in_flight
            if _done is not None:
                in_flight -= 1
            while queue and in_flight < self.max_in_flight:
                entry = queue.popleft()
                if entry.runner is None or entry.runner.closed:
                    continue
                if entry.stopped is not None and not entry.stopped.done():
                    in_flight += 1
                    entry.stopped.add_done_callback(launch)
                entry.runner.stop()

        launch()
        self._pump()  # phones that were waiting behind these may start now
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        queue.clear()
        for entry in entries:
            if entry.runner is not None:
                entry.runner.close()

    async def stop(self, timeout: float = 10.0) -> None:
        """Un-register every phone (bounded by ``timeout``), then close the stack if we own it."""
        if self._closed:
            return
        self._closed = True
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None
        self._waiting.clear()
        entries = list(self._phones.values())
        self._phones.clear()
        await self._stop_entries(entries, timeout)
        if self._own_stack:
            await self.stack.close()
