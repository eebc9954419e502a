"""The fleet monitor: keep every selected phone of the store registered, and say how it goes.

What it adds to the driver's :class:`~sipphones.sipio.agent.RegistrationAgent` (which keeps
phones registered, refreshes with jitter, fails over and back, and paces first registrations):

* **The fleet comes from the store** and follows it: every ``reload_interval`` seconds the
  monitor polls ``phone_versions()`` (one cheap query), diffs it against the versions it runs
  with (:func:`~sipphones.monitor.reload.diff_versions`) and starts new phones, restarts changed
  ones (the agent un-REGISTERs the old binding first; a change that does not touch registration,
  e.g. ``voice_mail``, keeps the binding) and stops deleted ones with an un-REGISTER.
* **Health goes back to the store** (``phone_status``) through a
  :class:`~sipphones.monitor.status.StatusWriter` that writes only on change.
* **Metrics** for Prometheus (:mod:`sipphones.monitor.metrics`).
* **A clean stop**: un-REGISTER everything within ``stop_timeout``, write the final states
  (bounded too), end the fleet lease, close the store.
* **A share of a fleet** (with a :class:`~sipphones.monitor.fleet.FleetShare`): only the phones
  this monitor holds a claim of, rebalanced when monitors join or leave (``monitor.fleet``).

Scale: per phone the monitor keeps one small :class:`PhoneHealth` and one float (its version);
there is no task per phone. Events arrive as callbacks from the agent's machines; the only
long-lived tasks are the reload loop and the status writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from sipphones.monitor.fleet import FleetShare
from sipphones.monitor.metrics import MetricsServer, MonitorMetrics
from sipphones.monitor.reload import FleetChanges, PhoneSelection, diff_versions
from sipphones.monitor.status import PhoneHealth, StatusWriter, apply_report
from sipphones.phones.models import SipPhone
from sipphones.registration_config import registration_config
from sipphones.sip.config import (
    DEFAULT_USER_AGENT, ConfigError, RegistrationConfig, RegistrationPolicy, TransactionTimers,
)
from sipphones.sip.events import (
    Expired,
    FailedBack,
    FailedOver,
    Registered,
    RegistrationFailed,
    Stopped,
    Unregistered,
)
from sipphones.sipio.gc_policy import FleetCollector
from sipphones.sipio.agent import AgentEvent, RegistrationAgent
from sipphones.sipio.stack import SipStack
from sipphones.repository import Repository

__all__ = ["MonitorOptions", "FleetMonitor", "INVALID"]

log = logging.getLogger("sipphones.monitor")

INVALID = "invalid"  # the state of a phone whose record cannot be turned into a registration
# When a reload brings more new or changed phones than this, read them with one scan of the
# store instead of one query per phone.
_SCAN_THRESHOLD = 100


@dataclass(frozen=True)
class MonitorOptions:
    """How the monitor runs (the CLI's options; every duration in seconds)."""

    selection: PhoneSelection = field(default_factory=PhoneSelection)
    reload_interval: float = 30.0
    server_budget: float = 5.0         # per server: answer within this or fail over
    jitter: float = 0.1                # refreshes up to this fraction earlier, at random
    probe_interval: float = 120.0      # while on a backup set: how often to try the first again
    retry_base: float = 30.0           # every set failed: first retry after this, doubling...
    retry_max: float = 600.0           # ...up to this
    start_rate: float = 200.0          # first registrations per second (0: no pacing)
    stop_timeout: float = 20.0         # bound of the un-REGISTERs on stop (and on delete/change)
    status_heartbeat: float = 900.0    # rewrite an unchanged status row this often (0: never)
    change_concurrency: int = 200      # restarts / removals in flight at once during a reload
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None    # None: no metrics endpoint
    ca_file: str | None = None
    nameservers: tuple[tuple[str, int], ...] | None = None
    user_agent: str = DEFAULT_USER_AGENT
    keepalive_interval: float | None = 90.0
    expires: int | None = None         # seconds to ask for instead of registration_expire_time (labs, tests)
    tune_gc: bool = False              # the process is the monitor's own: run sipio.gc_policy's FleetCollector

    def policy(self) -> RegistrationPolicy:
        timers = TransactionTimers(budget=self.server_budget)
        return RegistrationPolicy(timers=timers, jitter=self.jitter, probe_interval=self.probe_interval,
                                  retry_base=self.retry_base, retry_max=self.retry_max)

    def stack(self) -> SipStack:
        return SipStack.create(ca_file=self.ca_file,
                               nameservers=list(self.nameservers) if self.nameservers else None,
                               keepalive_interval=self.keepalive_interval)


class _Agent(RegistrationAgent):
    """The driver's agent, asking for ``expires`` seconds instead of the phone's own when given,
    and removing the Contacts a previous keeper left (``stale_for``) with the first REGISTER."""

    def __init__(self, *args, expires: int | None = None,
                 stale_for: Callable[[str], tuple[str, ...]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.expires = expires
        self.stale_for = stale_for

    def config_for(self, phone: SipPhone) -> RegistrationConfig:
        stale = self.stale_for(phone.id) if self.stale_for is not None else ()
        return registration_config(phone, user_agent=self.user_agent, expires=self.expires, stale_contacts=stale)


class FleetMonitor:
    """Runs the fleet. ``await start()``, then ``await run(stop_event)`` or ``reload()`` by hand,
    then ``await stop()``. The store must stay open until :meth:`stop` returns."""

    def __init__(self, repo: Repository, options: MonitorOptions = MonitorOptions(), *,
                 stack: SipStack | None = None, clock: Callable[[], float] = time.time,
                 fleet: FleetShare | None = None):
        self.repo = repo
        self.fleet = fleet              # None: this monitor keeps every selected phone alone
        self.options = options
        self._clock = clock
        self._stack = stack
        self._own_stack = stack is None
        self.health: dict[str, PhoneHealth] = {}
        self.versions: dict[str, int] = {}         # phone id -> version of the record in use
        self.state_counts: dict[str, int] = {}
        self.metrics = MonitorMetrics(lambda: self.state_counts)
        self.writer = StatusWriter(repo, clock=clock, on_write=self._on_write,
                                   on_pending=self.metrics.status_pending.set)
        self.agent: RegistrationAgent | None = None
        self.metrics_server: MetricsServer | None = None
        self.unregistered_on_stop = {True: 0, False: 0}  # un-REGISTER outcomes during stop()
        self.collector = FleetCollector()  # started only with options.tune_gc
        self._reload_lock = asyncio.Lock()
        self._selected: dict[str, int] = {}       # the selection's versions at the last poll
        self._rebalance = asyncio.Event()         # the fleet's heartbeat asks for a rebalance
        self._beats: asyncio.Task | None = None
        self._stopping = False
        self._stopped = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FleetChanges:
        """Open the metrics endpoint, start the agent and the writer, load the fleet."""
        if self.options.metrics_port is not None:
            self.metrics_server = MetricsServer(self.metrics.registry, self.options.metrics_host, self.options.metrics_port)
        if self.options.tune_gc:
            self.collector.start()
        stack = self._stack or self.options.stack()
        self.agent = _Agent(stack, policy=self.options.policy(), on_event=self._on_event,
                            user_agent=self.options.user_agent, start_rate=self.options.start_rate,
                            expires=self.options.expires,
                            stale_for=self.fleet.stale_contacts if self.fleet is not None else None)
        self.writer.start()
        if self.fleet is not None:
            await self.fleet.beat()  # the first heartbeat must succeed: the members decide the share
            self._beats = asyncio.get_running_loop().create_task(self._heartbeats(), name="sipphones-fleet-heartbeat")
        return await self.reload()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll the store every ``reload_interval`` until ``stop`` is set (errors are logged, counted,
        and retried at the next poll: a database restart must not end the monitor)."""
        interval = max(0.05, self.options.reload_interval)
        next_reload = time.monotonic() + interval
        while not stop.is_set():
            stopped = asyncio.ensure_future(stop.wait())
            rebalance = asyncio.ensure_future(self._rebalance.wait())
            try:
                await asyncio.wait({stopped, rebalance}, timeout=max(0.0, next_reload - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                rebalance.cancel()
            if stop.is_set():
                return
            self._rebalance.clear()
            try:
                if time.monotonic() >= next_reload:
                    next_reload = time.monotonic() + interval
                    await self.reload()
                else:
                    await self.reload(poll=False)
            except Exception as e:  # noqa: BLE001
                log.warning("reloading phones failed: %s: %s", e.__class__.__name__, e)

    async def _heartbeats(self) -> None:
        """Renew the fleet lease every ``lease / 3`` s; ask for a rebalance when the members
        changed, a claim was lost, or part of the share is still to claim. A failed heartbeat
        (the database away) is logged once per outage and retried; registrations go on."""
        assert self.fleet is not None
        fleet = self.fleet
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # a fixed cadence (a slow beat does not push the next one back), at most half a lease per beat
            due = max(due + fleet.beat_interval, loop.time())
            await asyncio.sleep(due - loop.time())
            try:
                changed = await asyncio.wait_for(fleet.beat(), fleet.lease / 2)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a database restart must not end the monitor
                fleet.beat_failures += 1
                if fleet.beat_failures == 1:
                    log.warning("fleet heartbeat failed (registrations go on; retrying every %.1f s): %s: %s",
                                fleet.beat_interval, e.__class__.__name__, e)
                continue
            if changed or fleet.wants_more:
                self._rebalance.set()

    async def stop(self) -> None:
        """Un-REGISTER every phone (bounded), write their final status (bounded), release all."""
        if self._stopped:
            return
        self._stopping = True
        deadline = time.monotonic() + self.options.stop_timeout
        if self._beats is not None:
            self._beats.cancel()
            try:
                await self._beats
            except asyncio.CancelledError:
                pass
        async with self._reload_lock:  # never stop in the middle of a reload's starts
            if self.agent is not None:
                await self.agent.stop(timeout=self.options.stop_timeout)
                if self._own_stack:
                    await self.agent.stack.close()
            for h in self.health.values():
                if h.state != INVALID:
                    self._set_state(h, "stopped")
                    h.clear_binding()
                self.writer.offer(h)
            flushed = await self.writer.flush(max(1.0, deadline - time.monotonic()))
            if not flushed:
                log.warning("%d status rows were not written before the stop timeout", self.writer.pending)
            await self.writer.close()
            if self.fleet is not None:  # un-registered: the phones are free for the other monitors
                try:
                    await asyncio.wait_for(self.fleet.leave(), max(1.0, deadline - time.monotonic()))
                except Exception as e:  # noqa: BLE001 - the lease runs out on its own
                    log.warning("could not end the fleet lease (the others take over when it runs out): %s: %s",
                                e.__class__.__name__, e)
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        self.collector.stop()
        self._stopped = True

    # --- reload ------------------------------------------------------------------------------

    async def current_versions(self) -> dict[str, int]:
        sel = self.options.selection
        versions: dict[str, int] = {}
        for account in sel.account_queries:
            versions.update(await self.repo.phone_versions(account))
        return sel.keep(versions)

    async def reload(self, *, poll: bool = True) -> FleetChanges:
        """One poll of the store (``poll=False``: the last poll's phones, for a rebalance of the
        fleet): start, restart and stop registrations to match it."""
        async with self._reload_lock:
            if self._stopping:
                return FleetChanges()
            try:
                if poll:
                    self._selected = await self.current_versions()
                current = self._selected
                if self.fleet is not None:
                    current = await self.fleet.settle(current, self._remove_many)
                changes = diff_versions(self.versions, current)
                if not changes.empty:
                    await self._apply(changes)
                if self.fleet is not None:
                    await self.fleet.release_gone()
            except Exception:
                self.metrics.reloads.labels("error").inc()
                raise
            self.metrics.reloads.labels("ok").inc()
            for name in ("added", "changed", "removed"):
                n = len(getattr(changes, name))
                if n:
                    self.metrics.reload_changes.labels(name).inc(n)
            if not changes.empty:
                log.info("phones: %d added, %d changed, %d removed (%d managed)", len(changes.added),
                         len(changes.changed), len(changes.removed), len(self.versions))
            return changes

    async def _apply(self, changes: FleetChanges) -> None:
        assert self.agent is not None
        limit = asyncio.Semaphore(max(1, self.options.change_concurrency))

        async def bounded(coro):
            async with limit:
                await coro

        if changes.removed or changes.changed:
            self.collector.release()  # the leaving phones' objects become collectable again
        removals = [bounded(self._remove(pid)) for pid in changes.removed]
        if removals:
            await asyncio.gather(*removals)
        wanted = set(changes.added) | set(changes.changed)
        phones = await self._load(wanted)
        # A phone listed by phone_versions but deleted before it was read: forget it, the next
        # poll will not list it either.
        restarts = []
        for pid in changes.changed:
            phone = phones.get(pid)
            if phone is None:
                restarts.append(bounded(self._remove(pid)))
            else:
                restarts.append(bounded(self._restart(phone)))
        if restarts:
            await asyncio.gather(*restarts)
        for pid in changes.added:
            phone = phones.get(pid)
            if phone is not None:
                self._add(phone)
        self.collector.settle()  # the fleet as loaded now stays out of later collections
        self.metrics.phones_managed.set(len(self.versions))

    async def _load(self, ids: set[str]) -> dict[str, SipPhone]:
        if not ids:
            return {}
        sel = self.options.selection
        found: dict[str, SipPhone] = {}
        if len(ids) > _SCAN_THRESHOLD:
            for account in sel.account_queries:
                async for phone in self.repo.iter_phones(account):
                    if phone.id in ids:
                        found[phone.id] = phone
        else:
            for pid in sorted(ids):
                phone = await self.repo.find_phone(pid)
                if phone is not None and sel.wants(phone.id, phone.account_id):
                    found[pid] = phone
        return found

    # --- one phone ---------------------------------------------------------------------------

    def _add(self, phone: SipPhone) -> None:
        assert self.agent is not None
        slots = [slot for slot, _ in phone.configured_servers()]
        health = PhoneHealth(phone.id, phone.account_id, first_slot=slots[0] if slots else 1)
        self.health[phone.id] = health
        self.versions[phone.id] = phone.version
        self._count(None, health.state)
        try:
            self.agent.add(phone)
        except ConfigError as e:
            self._set_state(health, INVALID)
            health.last_error = f"the phone record cannot be registered: {e}"
            self.writer.offer(health)

    async def _remove_many(self, phone_ids: list[str]) -> None:
        """Un-REGISTER these phones (a share handed to another monitor), bounded in flight."""
        limit = asyncio.Semaphore(max(1, self.options.change_concurrency))

        async def one(pid: str) -> None:
            async with limit:
                await self._remove(pid)

        await asyncio.gather(*(one(pid) for pid in phone_ids))
        self.metrics.phones_managed.set(len(self.versions))

    async def _remove(self, phone_id: str) -> None:
        assert self.agent is not None
        health = self.health.pop(phone_id, None)
        self.versions.pop(phone_id, None)
        self.writer.forget(phone_id)
        if health is not None:
            self._count(health.state, None)
        if phone_id in self.agent:
            await self.agent.remove(phone_id, timeout=self.options.stop_timeout)

    async def _restart(self, phone: SipPhone) -> None:
        assert self.agent is not None
        health = self.health.get(phone.id)
        if health is None or phone.id not in self.agent:
            # not running (an invalid record, say): start afresh with the new record
            await self._remove(phone.id)
            self._add(phone)
            return
        self.versions[phone.id] = phone.version
        try:
            restarted = await self.agent.replace(phone, timeout=self.options.stop_timeout)
        except ConfigError as e:
            # the agent un-registered the old record before it found the new one unusable
            await self.agent.remove(phone.id, timeout=self.options.stop_timeout)
            self._set_state(health, INVALID)
            health.clear_binding()
            health.last_error = f"the phone record cannot be registered: {e}"
            self.writer.offer(health)
            return
        if restarted:
            slots = [slot for slot, _ in phone.configured_servers()]
            health.first_slot = slots[0] if slots else 1

    # --- events from the agent ---------------------------------------------------------------

    def _on_event(self, event: AgentEvent) -> None:
        health = self.health.get(event.phone_id)
        report = event.report
        self._metrics_for(report)
        if self._stopping and isinstance(report, Unregistered):
            self.unregistered_on_stop[report.ok] += 1
        if health is None or self.agent is None:
            return  # a phone being removed: its last reports only count in the metrics
        before = health.key()
        apply_report(health, report, event.at)
        if isinstance(report, Stopped):
            self._set_state(health, "stopped")
        elif event.phone_id in self.agent:
            status = self.agent.status(event.phone_id)
            self._set_state(health, str(status.state))
            health.sync_binding(status.registered, status.slot, status.expires)
            if self.fleet is not None and isinstance(report, Registered):
                self.fleet.registered(event.phone_id, status.contact)
        if isinstance(report, FailedOver):
            log.warning("phone %s: set %d failed (%s), trying set %d", event.phone_id, report.from_slot,
                        report.kind, report.to_slot)
        elif isinstance(report, FailedBack):
            log.info("phone %s: set %d answers again, moving back from set %d", event.phone_id, report.to_slot,
                     report.from_slot)
        if health.key() != before and not self._stopping:
            _log_change(health)
        if not self._stopping:
            self.writer.offer(health, heartbeat=self.options.status_heartbeat)

    def _metrics_for(self, report) -> None:
        m = self.metrics
        if isinstance(report, Registered):
            m.registered(report.rtt)
        elif isinstance(report, RegistrationFailed):
            m.failed(str(report.kind))
        elif isinstance(report, FailedOver):
            m.failed_over(str(report.kind))
        elif isinstance(report, FailedBack):
            m.failed_back()
        elif isinstance(report, Expired):
            m.expired()
        elif isinstance(report, Unregistered):
            m.unregistered(report.ok)

    def _set_state(self, health: PhoneHealth, state: str) -> None:
        if state != health.state:
            self._count(health.state, state)
            health.state = state

    def _count(self, old: str | None, new: str | None) -> None:
        counts = self.state_counts
        if old is not None:
            n = counts.get(old, 0) - 1
            if n > 0:
                counts[old] = n
            else:
                counts.pop(old, None)
        if new is not None:
            counts[new] = counts.get(new, 0) + 1

    def _on_write(self, ok: bool, rows: int) -> None:
        self.metrics.status_writes.labels("ok" if ok else "error").inc(rows)


def _log_change(h: PhoneHealth) -> None:
    """One line per change an operator may care about (never per refresh: those change nothing)."""
    if h.registered:
        if h.server_address:  # (blank for an instant during a fail-back, until its report)
            log.info("phone %s: registered on set %s %s/%s, expires in %ss%s", h.phone_id, h.server_slot,
                     h.server_address, h.transport, h.granted_expires,
                     f" (set {h.first_slot} unavailable)" if h.server_slot != h.first_slot else "")
    elif h.state not in ("stopping", "stopped") and (h.state in ("failed", INVALID) or h.last_error):
        log.warning("phone %s: %s: %s", h.phone_id, h.state, h.last_error or "not registered")
