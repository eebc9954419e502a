"""The driver: runs the sans-IO registration machines of ``sipphones.sip.registration`` on asyncio.

The machines decide everything (what to send, when, where to fail over); this module only
performs their actions and feeds the outcomes back (see the driver protocol in
``sipphones.sip.registration``):

* ``Resolve``  -> :class:`~sipphones.sipio.resolver.SipResolver` (a task), then ``resolved`` /
  ``resolve_failed``;
* ``Connect``  -> :meth:`TransportManager.acquire` (a task unless this machine already holds a
  live flow to the target), then ``connected`` with the flow's local address, or
  ``transport_error`` with the typed error's kind;
* ``Send``     -> ``flow.send``; the top-Via branch is registered with the transport manager so
  the responses come back to this machine's ``receive``;
* ``Release``  -> :meth:`TransportManager.release`;
* ``SetTimer`` -> one entry of the stack's shared timer queue per machine, replaced on every SetTimer;
* reports      -> the caller's callback.

Flows break asynchronously (ICMP port-unreachable on UDP, a reset or a missed keep-alive pong on
TCP/TLS); the runner listens on every flow it holds and turns that into ``transport_error``.

:func:`run_check` runs one check machine under a hard deadline; the fleet of registration
machines is ``sipphones.sipio.agent``'s :class:`~sipphones.sipio.agent.RegistrationAgent`.

Clock: the machines get ``loop.time()`` (monotonic seconds); their deadlines are in that clock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from typing import Callable

from sipphones.sip.address import HostPort
from sipphones.sip.config import RegistrationConfig, RegistrationPolicy, Target
from sipphones.sip.errors import ParseError
from sipphones.sip.headers import Via
from sipphones.sip.message import Response
from sipphones.sip.transaction import top_via_branch
from sipphones.sip.events import (
    CheckFinished,
    Connect,
    Release,
    Report,
    Resolve,
    ResultKind,
    RetryAfterCapped,
    Send,
    SetTimer,
    SlotResult,
)
from sipphones.sip.registration import Registration
from sipphones.sip.registration_check import RegistrationCheck

from .errors import TransportError
from .resolver import DnsError
from .stack import SipStack
from .timers import TimerEntry
from .transport import Flow

__all__ = ["MachineRunner", "CheckRun", "run_check", "result_kind_for"]

log = logging.getLogger(__name__)

_KIND_BY_TRANSPORT_ERROR = {
    "connection_refused": ResultKind.CONNECTION_REFUSED,
    "timeout": ResultKind.TIMEOUT,
    "tls_error": ResultKind.TLS_ERROR,
}


# Targets whose capped Retry-After was logged, and until when (loop time) not to log it again:
# one line per server and cap period, not one per phone of a fleet. Bounded.
_CAP_LOGGED: dict[Target, float] = {}
_CAP_LOGGED_MAX = 1024


def _log_capped(report: RetryAfterCapped, now: float) -> None:
    until = _CAP_LOGGED.get(report.target)
    if until is not None and until > now:
        return
    if len(_CAP_LOGGED) >= _CAP_LOGGED_MAX:
        _CAP_LOGGED.clear()
    _CAP_LOGGED[report.target] = now + report.used
    log.warning("%s asked not to be used for %d s (Retry-After); capped to %d s", report.target,
                report.asked, report.used)


def result_kind_for(error: TransportError) -> ResultKind:
    """The machine's word for a transport failure (protocol errors and resets are transport errors)."""
    return _KIND_BY_TRANSPORT_ERROR.get(error.kind, ResultKind.TRANSPORT_ERROR)


def _top_via(response: Response) -> Via | None:
    vias = response.headers.values("Via")
    if not vias:
        return None
    try:
        return Via.parse(vias[0])
    except ParseError:
        return None


def _hostport(host: str, port: int | None) -> HostPort:
    try:
        kind = "ipv6" if ipaddress.ip_address(host).version == 6 else "ipv4"
    except ValueError:
        kind = "name"
    return HostPort(host=host, port=port, kind=kind)


class MachineRunner:
    """Performs the actions of one registration machine (see the module docstring).

    ``on_report`` receives every report the machine emits. Diagnostics the machine does not
    keep are collected per slot: ``dns_errors`` (the typed DNS failure), ``malformed`` (the last
    malformed input seen on a flow this slot used), ``seen_via`` (``received``/``rport`` the
    registrar put in our Via: how it sees us, RFC 3581). ``diagnostics=False`` skips the last
    two (a per-response Via parse and a listener per flow): the agent's long-lived runners do,
    since nothing reads them there; a check keeps them for its report.
    """

    __slots__ = ("stack", "machine", "on_report", "name", "connect_timeout", "_loop", "_queue",
                 "_draining", "_timers", "_timer", "_timer_cb", "_response_cb", "_tasks", "_flows",
                 "_connecting", "_branches", "_branch_slot", "dns_errors", "malformed", "seen_via",
                 "closed", "broken", "diagnostics")

    def __init__(self, stack: SipStack, machine: Registration | RegistrationCheck, *,
                 on_report: Callable[[Report], None] | None = None, name: str = "",
                 diagnostics: bool = True, loop: asyncio.AbstractEventLoop | None = None):
        self.stack = stack
        self.diagnostics = diagnostics
        self.machine = machine
        self.on_report = on_report
        self.name = name
        self.connect_timeout = machine.policy.timers.response_timeout
        # ``loop``: the running loop, from a caller that has it (the agent: asking asyncio for it
        # is a getpid() system call per call on Python 3.11).
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._queue: list | None = None    # only while performing outputs (see _feed)
        self._draining = False
        self._timers = stack.timer_queue(self._loop)
        self._timer: TimerEntry | None = None
        self._timer_cb = self._on_timer          # bound once, not per SetTimer
        self._response_cb = self._on_response    # bound once, not per REGISTER
        self._tasks: set[asyncio.Task] | None = None   # created on the first task
        self._flows: dict[tuple[int, Target], Flow] = {}
        self._connecting: dict[tuple[int, Target], asyncio.Task] = {}
        self._branches: dict[int, str] = {}
        self._branch_slot: dict[str, int] = {}
        self.dns_errors: dict[int, DnsError] = {}
        self.malformed: dict[int, str] = {}
        self.seen_via: dict[int, tuple[str | None, int | None]] = {}
        self.closed = False
        self.broken: BaseException | None = None

    # --- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self._call(self.machine.start)

    def stop(self) -> None:
        """Ask the machine to un-register (a ``Stopped`` / ``CheckFinished`` report follows)."""
        self._call(self.machine.stop)

    def close(self) -> None:
        """Drop everything at once (no un-REGISTER): tasks, timer, flows, routes."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timers.cancel(self._timer)
            self._timer = None
        for task in list(self._tasks or ()):
            task.cancel()
        self._tasks = None
        self._connecting.clear()
        for branch in list(self._branch_slot):
            self.stack.transports.forget(branch)
        self._branch_slot.clear()
        self._branches.clear()
        for key in list(self._flows):
            self._drop_flow(key)

    # --- machine calls ---------------------------------------------------------------------

    def _call(self, fn: Callable[[float], list]) -> None:
        """Call a machine input ``fn(now)`` and perform what it returns."""
        if self.closed or self.broken is not None:
            return
        try:
            outputs = fn(self._loop.time())
        except Exception as e:  # a machine bug must not take the other phones down
            self._broke(e)
            return
        self._feed(outputs)

    def _broke(self, error: Exception) -> None:
        self.broken = error
        log.exception("registration machine %s failed; it is stopped", self.name)
        self.close()

    def _feed(self, outputs: list) -> None:
        """Perform ``outputs``; those of machine calls made meanwhile (by a report callback, say)
        are appended to the queue and performed in turn."""
        if self._draining:
            self._queue.extend(outputs)  # type: ignore[union-attr]
            return  # the loop below is already running further up the stack
        self._draining = True
        # A queue per drain, not per runner: ten thousand idle runners hold none.
        queue = self._queue = list(outputs)
        try:
            i = 0
            while i < len(queue) and not self.closed:
                out = queue[i]
                i += 1
                self._perform(out)
        finally:
            self._draining = False
            self._queue = None

    def _perform(self, out) -> None:
        if isinstance(out, Send):
            self._send(out)
        elif isinstance(out, SetTimer):
            self._set_timer(out.at)
        elif isinstance(out, Connect):
            self._connect(out.slot, out.target)
        elif isinstance(out, Release):
            self._release(out.slot, out.target)
        elif isinstance(out, Resolve):
            self._spawn(self._resolve(out))
        elif isinstance(out, Report):
            if isinstance(out, RetryAfterCapped):
                _log_capped(out, self._loop.time())
            if self.on_report is not None:
                try:
                    self.on_report(out)
                except Exception:
                    log.exception("report callback failed for %s", self.name)

    def _spawn(self, coro) -> None:
        task = self._loop.create_task(coro)
        self._track(task)

    def _track(self, task: asyncio.Task) -> None:
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
            if not self._tasks:
                self._tasks = None

    # --- timers ----------------------------------------------------------------------------

    def _set_timer(self, at: float | None) -> None:
        if self._timer is not None:
            self._timers.cancel(self._timer)
            self._timer = None
        if at is not None:
            self._timer = self._timers.call_at(at, self._timer_cb)

    def _on_timer(self) -> None:
        self._timer = None
        self._call(self.machine.timer)

    # --- resolve ---------------------------------------------------------------------------

    async def _resolve(self, action: Resolve) -> None:
        try:
            targets = await self.stack.resolver.resolve(_hostport(action.host, action.port), action.transport)
        except DnsError as e:
            self.dns_errors[action.slot] = e
            detail = f"DNS {e.kind}: {e}"
            self._call(lambda now: self.machine.resolve_failed(action.slot, now, detail))
            return
        except Exception as e:  # noqa: BLE001 - reported as a DNS failure, never lost
            log.exception("resolver failed for %s", action.host)
            detail = f"DNS error: {e}"
            self._call(lambda now: self.machine.resolve_failed(action.slot, now, detail))
            return
        self.dns_errors.pop(action.slot, None)
        self._call(lambda now: self.machine.resolved(action.slot, targets, now))

    # --- flows -----------------------------------------------------------------------------

    def _connect(self, slot: int, target: Target) -> None:
        key = (slot, target)
        flow = self._flows.get(key)
        if flow is not None and flow.closed:
            self._drop_flow(key)
            flow = None
        if flow is not None:
            self._connected(slot, target, flow)
            return
        if key in self._connecting:
            return
        flow = self.stack.transports.acquire_open(target)
        if flow is not None:   # a flow to the target is open already: no task needed
            self._hold(key, flow)
            self._connected(slot, target, flow)
            return
        task = self._loop.create_task(self._acquire(key))
        self._connecting[key] = task
        self._track(task)

    def _connected(self, slot: int, target: Target, flow: Flow) -> None:
        """``_call`` of ``machine.connected`` without a closure (once per REGISTER sequence);
        ``flow`` is open and held for ``(slot, target)``."""
        if self.closed or self.broken is not None:
            return
        try:
            outputs = self.machine.connected(slot, target, flow.local_host, flow.local_port, self._loop.time())
        except Exception as e:  # a machine bug must not take the other phones down
            self._broke(e)
            return
        self._feed(outputs)

    async def _acquire(self, key: tuple[int, Target]) -> None:
        slot, target = key
        try:
            flow = await self.stack.transports.acquire(target, connect_timeout=self.connect_timeout)
        except Exception as e:  # TransportError, or a bug: either way the machine must hear of it
            if not isinstance(e, TransportError):
                log.exception("opening a flow to %s failed", target)
            if self._connecting.get(key) is asyncio.current_task():
                del self._connecting[key]
                kind = result_kind_for(e) if isinstance(e, TransportError) else ResultKind.TRANSPORT_ERROR
                detail = str(e)
                self._call(lambda now: self.machine.transport_error(slot, target, kind, now, detail))
            return
        if self._connecting.get(key) is not asyncio.current_task() or self.closed:
            self.stack.transports.release(flow)  # released (or closed) while we were connecting
            return
        del self._connecting[key]
        self._hold(key, flow)
        self._connected(slot, target, flow)

    def _hold(self, key: tuple[int, Target], flow: Flow) -> None:
        if flow not in self._flows.values():
            flow.add_listener(self._on_flow_error)
            if self.diagnostics:
                flow.add_malformed_listener(self._on_malformed)
        self._flows[key] = flow

    def _drop_flow(self, key: tuple[int, Target]) -> None:
        flow = self._flows.pop(key, None)
        if flow is None:
            return
        if flow not in self._flows.values():
            flow.remove_listener(self._on_flow_error)
            flow.remove_malformed_listener(self._on_malformed)
        self.stack.transports.release(flow)

    def _release(self, slot: int, target: Target) -> None:
        key = (slot, target)
        task = self._connecting.pop(key, None)
        if task is not None:
            task.cancel()
        self._drop_flow(key)

    def _slots_on(self, flow: Flow) -> list[tuple[int, Target]]:
        return [key for key, f in self._flows.items() if f is flow]

    def _on_flow_error(self, flow: Flow, error: TransportError) -> None:
        kind = result_kind_for(error)
        for slot, target in self._slots_on(flow):
            if flow.closed:
                self._drop_flow((slot, target))
            if error.kind == "protocol_error":
                self.malformed[slot] = error.detail
            self._call(lambda now: self.machine.transport_error(slot, target, kind, now, str(error)))

    def _on_malformed(self, flow: Flow, error: ParseError) -> None:
        for slot, _target in self._slots_on(flow):
            self.malformed[slot] = f"malformed reply from {flow.target}: {type(error).__name__}: {error}"

    # --- messages --------------------------------------------------------------------------

    def _send(self, action: Send) -> None:
        key = (action.slot, action.target)
        flow = self._flows.get(key)
        if flow is None or flow.closed:
            self._call(lambda now: self.machine.transport_error(
                action.slot, action.target, ResultKind.TRANSPORT_ERROR, now, "no open flow to the target"))
            return
        request = action.request
        branch = top_via_branch(request.headers)
        if branch and self._branches.get(action.slot) != branch:
            old = self._branches.get(action.slot)
            if old is not None:
                self.stack.transports.forget(old)
                self._branch_slot.pop(old, None)
            self._branches[action.slot] = branch
            self._branch_slot[branch] = action.slot
            self.stack.transports.expect(branch, self._response_cb)
        try:
            flow.send(request.to_bytes())
        except TransportError as e:
            kind, detail = result_kind_for(e), str(e)
            self._call(lambda now: self.machine.transport_error(action.slot, action.target, kind, now, detail))

    def _on_response(self, response: Response, flow: Flow) -> None:
        first = (response.headers.get("Via") or "") if self.diagnostics else ""
        if "rport=" in first or "received=" in first:
            via = _top_via(response)
            if via is not None and (via.received is not None or via.rport is not None):
                slot = self._branch_slot.get(via.branch or "")
                if slot is not None:
                    self.seen_via[slot] = (via.received, via.rport)
        # _call without a closure per response
        if self.closed or self.broken is not None:
            return
        try:
            outputs = self.machine.receive(response, self._loop.time())
        except Exception as e:  # a machine bug must not take the other phones down
            self._broke(e)
            return
        self._feed(outputs)


# --- check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRun:
    """What one check found: the machine's per-set results plus the runner's diagnostics."""

    results: tuple[SlotResult, ...]
    dns_errors: dict[int, DnsError]
    malformed: dict[int, str]
    seen_via: dict[int, tuple[str | None, int | None]]
    call_ids: dict[int, str]
    completed: bool          # False when the overall timeout cut it short


async def run_check(stack: SipStack, config: RegistrationConfig, *,
                    policy: RegistrationPolicy = RegistrationPolicy(), all_slots: bool = True,
                    timeout: float | None = None, stop_grace: float = 5.0) -> CheckRun:
    """Register once per server set, un-register, and return the per-set results.

    ``timeout`` is a hard deadline of the whole check: when it passes, the check is stopped
    (what may be registered is un-registered, within ``stop_grace``), then ended at once: every
    set still gets a result (the one in progress ``timeout``, those not reached ``not_tried``)
    and ``completed`` is False. So it returns within ``timeout + stop_grace``.
    """
    loop = asyncio.get_running_loop()
    machine = RegistrationCheck(config, rng=stack.rng, policy=policy, all_slots=all_slots)
    finished: asyncio.Future = loop.create_future()

    def on_report(report: Report) -> None:
        if isinstance(report, CheckFinished) and not finished.done():
            finished.set_result(report.results)

    runner = MachineRunner(stack, machine, on_report=on_report, name=config.phone_id or config.aor)
    completed = True
    try:
        runner.start()
        try:
            await asyncio.wait_for(asyncio.shield(finished), timeout)
        except asyncio.TimeoutError:
            completed = False
            runner.stop()
            try:
                await asyncio.wait_for(asyncio.shield(finished), stop_grace)
            except asyncio.TimeoutError:
                runner._call(machine.abort)   # no more waiting: results for every set, now
        if runner.broken is not None:
            raise RuntimeError(f"registration machine failed: {runner.broken}") from runner.broken
    finally:
        runner.close()
    return CheckRun(results=tuple(machine.results), dns_errors=dict(runner.dns_errors),
                    malformed=dict(runner.malformed), seen_via=dict(runner.seen_via),
                    call_ids={slot: machine.call_id(slot) for slot in config.slots},
                    completed=completed)
