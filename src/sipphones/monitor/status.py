"""Per-phone registration health as the monitor records it in the store (``phone_status``).

Two concerns, kept apart:

* :class:`PhoneHealth` is the monitor's in-memory view of one phone, updated from the reports of
  its registration machine (:func:`apply_report`) and from the machine's observable state
  (:meth:`PhoneHealth.sync`). Pure: no store, no clock reads.
* :class:`StatusWriter` writes rows to the store from one background task, *only when something
  an operator cares about changed* (registered or not, state, server, transport, last error,
  last status, granted expiry) or, at most every ``heartbeat`` seconds, to keep
  ``last_success_at`` meaningful. A refresh that changes nothing writes nothing, so 10,000
  phones refreshing every 30 s cost the store a handful of writes per second instead of 333.
  Pending rows are coalesced per phone: a phone that changes state three times before the
  writer gets to it costs one write.

``last_error`` says why the phone is not registered on its *first* server set: empty while it
is, the failure that moved it to a backup set while on a backup (so a failover is visible in the
row), and the last failure while it is not registered at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from sipphones.sip.config import Target
from sipphones.sip.events import Expired, Registered, RegistrationFailed, Report, Stopped
from sipphones.repository import PhoneStatus, Repository

__all__ = ["PhoneHealth", "StatusWriter", "apply_report", "describe_failure", "target_text"]

log = logging.getLogger("sipphones.monitor")


def target_text(target: Target | None) -> str:
    """``127.0.0.1:5060`` (``[::1]:5061`` for IPv6): the address column of the status row."""
    if target is None:
        return ""
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def describe_failure(report: RegistrationFailed) -> str:
    """One line an operator can act on, e.g. ``set 1 127.0.0.1:5060/UDP: timeout (no final ...)``."""
    where = f"set {report.slot}"
    if report.target is not None:
        where += f" {target_text(report.target)}/{report.target.transport.value}"
    what = str(report.kind)
    if report.status is not None:
        what += f" (SIP {report.status})"
    if report.detail:
        what += f": {report.detail}"
    return f"{where}: {what}"


@dataclass(slots=True)
class PhoneHealth:
    """What the monitor knows about one phone's registration (one per managed phone)."""

    phone_id: str
    account_id: str
    first_slot: int = 1
    registered: bool = False
    state: str = "idle"
    server_slot: int | None = None
    server_address: str = ""
    transport: str = ""
    last_error: str = ""
    last_status_code: int | None = None
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    granted_expires: int | None = None
    written_key: tuple | None = None     # significant fields at the last write (or offer)
    written_at: float | None = None      # wall time of that write

    def key(self) -> tuple:
        """The fields whose change is worth a write (timestamps excluded on purpose)."""
        return (self.registered, self.state, self.server_slot, self.server_address, self.transport,
                self.last_error, self.last_status_code, self.granted_expires)

    def sync_binding(self, registered: bool, slot: int | None, granted: int | None) -> None:
        """Copy where the machine's binding stands (after each of its reports).

        The address and transport come from the ``Registered`` report of the slot; when the
        machine moved to another slot (a fail-back reports ``FailedBack`` first), they are
        blanked until that report arrives, never left pointing at the old server.
        """
        self.registered = registered
        if registered:
            if slot != self.server_slot:
                self.server_slot = slot
                self.server_address, self.transport = "", ""
            self.granted_expires = granted
        else:
            self.clear_binding()

    def clear_binding(self) -> None:
        self.registered = False
        self.server_slot, self.server_address, self.transport, self.granted_expires = None, "", "", None

    def needs_write(self, now: float, heartbeat: float) -> bool:
        if self.key() != self.written_key:
            return True
        return (heartbeat > 0 and self.registered and self.written_at is not None
                and now - self.written_at >= heartbeat)

    def to_status(self, now: float) -> PhoneStatus:
        return PhoneStatus(
            phone_id=self.phone_id, account_id=self.account_id, registered=self.registered, state=self.state,
            server_slot=self.server_slot, server_address=self.server_address, transport=self.transport,
            last_error=self.last_error, last_status_code=self.last_status_code,
            last_success_at=self.last_success_at, last_attempt_at=self.last_attempt_at,
            granted_expires=self.granted_expires, updated_at=now,
        )


def apply_report(health: PhoneHealth, report: Report, now: float) -> None:
    """Fold one report of the registration machine into ``health`` (``now`` = wall clock).

    The ``state`` field is left to the caller, which counts state transitions for the metrics.
    """
    if isinstance(report, Registered):
        health.last_status_code = report.status
        health.last_success_at = now
        health.last_attempt_at = now
        health.server_slot = report.slot
        health.server_address = target_text(report.target)
        health.transport = report.target.transport.value if report.target is not None else ""
        health.granted_expires = report.expires
        if report.slot == health.first_slot:
            health.last_error = ""
    elif isinstance(report, RegistrationFailed):
        if report.probe:
            return  # a fail-back probe: the registration elsewhere stands, nothing changed
        health.last_attempt_at = now
        health.last_status_code = report.status
        health.last_error = describe_failure(report)
    elif isinstance(report, Expired):
        health.last_error = f"set {report.slot}: the binding expired before a refresh succeeded"
    elif isinstance(report, Stopped):
        health.clear_binding()


async def save_statuses(repo: Repository, statuses: list[PhoneStatus]) -> None:
    """Write several rows: in one transaction when the store offers ``save_statuses`` (SQLite
    writes ~70,000 rows/s that way, against ~1,000/s one transaction per row), else row by row."""
    save_many = getattr(repo, "save_statuses", None)
    if save_many is not None:
        await save_many(statuses)
        return
    for status in statuses:
        await repo.save_status(status)


class StatusWriter:
    """Writes ``PhoneStatus`` rows from one task, coalescing per phone, in batches of ``batch``.

    Rows wait in insertion order (a phone that changes again moves to the back with its newest
    row); the task takes the oldest ``batch`` rows at a time. A failed write is retried after
    ``retry_delay`` unless a newer row of the same phone arrived meanwhile.
    """

    def __init__(self, repo: Repository, *, on_write: Callable[[bool, int], None] | None = None,
                 on_pending: Callable[[int], None] | None = None, clock: Callable[[], float] = time.time,
                 retry_delay: float = 1.0, batch: int = 500):
        self._repo = repo
        self._on_write = on_write or (lambda ok, n: None)
        self._on_pending = on_pending or (lambda n: None)
        self._clock = clock
        self._retry_delay = retry_delay
        self._batch = max(1, batch)
        self._pending: dict[str, PhoneStatus] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None
        self._busy = False  # a write is in flight
        self.written = 0
        self.errors = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def offer(self, health: PhoneHealth, *, force: bool = False, heartbeat: float = 0.0) -> bool:
        """Queue ``health`` for writing if it changed (or ``force``); True when queued."""
        now = self._clock()
        if not force and not health.needs_write(now, heartbeat):
            return False
        health.written_key = health.key()
        health.written_at = now
        self._pending.pop(health.phone_id, None)  # move to the end: oldest changes go first
        self._pending[health.phone_id] = health.to_status(now)
        self._on_pending(len(self._pending))
        self._idle.clear()
        self._wake.set()
        return True

    def forget(self, phone_id: str) -> None:
        """Drop a waiting row (the phone was deleted: its status row goes with it)."""
        if self._pending.pop(phone_id, None) is not None:
            self._on_pending(len(self._pending))
            if not self._pending and not self._busy:
                self._idle.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sipphones-status-writer")

    def _take(self) -> list[PhoneStatus]:
        batch = []
        for phone_id in list(self._pending)[:self._batch]:
            batch.append(self._pending.pop(phone_id))
        self._on_pending(len(self._pending))
        return batch

    def _put_back(self, batch: list[PhoneStatus]) -> None:
        for status in batch:
            self._pending.setdefault(status.phone_id, status)  # unless a newer one is waiting
        self._on_pending(len(self._pending))

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            self._busy = True
            try:
                await save_statuses(self._repo, batch)
            except asyncio.CancelledError:
                self._put_back(batch)
                raise
            except Exception as e:  # noqa: BLE001 - a store hiccup must not stop the monitor
                self.errors += len(batch)
                self._on_write(False, len(batch))
                log.warning("could not save %d status row(s): %s: %s", len(batch), e.__class__.__name__, e)
                self._put_back(batch)
                await asyncio.sleep(self._retry_delay)
            else:
                self.written += len(batch)
                self._on_write(True, len(batch))
            finally:
                self._busy = False

    async def flush(self, timeout: float) -> bool:
        """Wait until every pending row is written, at most ``timeout`` seconds; True if done."""
        if not self._pending and not self._busy:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return not self._pending

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
