"""Monitors sharing one fleet through the store: who keeps which phone.

Any number of ``sipphones monitor`` processes, on any machines, pointed at one PostgreSQL,
divide the phones between them. The database does the coordinating (``storage.alchemy.fleet``):

* **Leases.** Every monitor has a row in ``monitors`` and renews it every ``lease / 3``
  seconds (a heartbeat task of its own, so a long reload never starves it). A monitor whose
  lease (default 10 s) has run out by the database's clock is dead.
* **Shares.** Each monitor computes, from the live members it saw at its last heartbeat, which
  phones are its own by rendezvous hashing (highest ``hash(member, phone)`` wins): every member
  computes the same split, a joining or leaving member moves only its own share.
* **Claims.** A monitor registers a phone only after it holds the phone's row in
  ``phone_keepers``, taken by one atomic ``INSERT ... ON CONFLICT DO UPDATE WHERE`` that
  succeeds only if the phone has no live keeper. So a phone is kept by one monitor at a time,
  whatever the members believe for an instant.
* **Release before acquire.** A monitor whose share shrank (a member joined) un-REGISTERs
  those phones first and deletes its claims after; the new owner's claim succeeds only then.
  A clean stop (SIGTERM) un-REGISTERs everything and deletes the monitor's lease and claims, so
  the others take the phones over at their next heartbeat.
* **Take-over after a crash.** A killed monitor's claims stay until its lease runs out; then
  the new owners claim the phones and get the Contact the dead monitor's binding holds (each
  keeper records its Contact in its claim), which their first REGISTER removes with
  ``;expires=0`` (``RegistrationConfig.stale_contacts``): the registrar holds two bindings of a
  phone only until that REGISTER, at most one lease plus one heartbeat plus the start pacing.
* **Losing the database.** Registrations are the SIP engine's and go on being refreshed;
  heartbeats, reloads and status writes fail and are retried. When the database returns, the
  monitor renews its lease and reads back its claims: a phone another monitor claimed in the
  meantime (possible only if this one's lease ran out while others could still reach the
  database) is un-REGISTERed here at the next rebalance.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
import time
from typing import Awaitable, Callable, Iterable

from sipphones.repository import Repository

__all__ = ["FleetShare", "DEFAULT_LEASE", "rendezvous_owner"]

log = logging.getLogger("sipphones.monitor")

DEFAULT_LEASE = 10.0           # seconds: a killed monitor's phones are taken over within two
MAX_CONTACT_WRITES = 5000      # contacts recorded per heartbeat (the rest at the next one)


def _weight(member: str, phone_id: str) -> bytes:
    return hashlib.blake2b(f"{member}\x00{phone_id}".encode(), digest_size=8).digest()


def rendezvous_owner(phone_id: str, members: Iterable[str]) -> str | None:
    """The member that keeps ``phone_id``: the highest hash of (member, phone) wins (None: no member)."""
    best, best_w = None, b""
    for m in members:
        w = _weight(m, phone_id)
        if best is None or w > best_w:
            best, best_w = m, w
    return best


class FleetShare:
    """One monitor's membership of the fleet (see the module docstring)."""

    def __init__(self, repo: Repository, *, lease: float = DEFAULT_LEASE, name: str | None = None):
        if not 1.0 <= lease <= 3600.0:
            raise ValueError("the lease must be between 1 and 3600 seconds")
        self.repo = repo
        self.id = secrets.token_hex(16)   # per process run: a restarted monitor is a new member
        self.name = (name or f"{socket.gethostname()}:{os.getpid()}")[:255]
        self.lease = lease
        self.beat_interval = lease / 3
        self.members: tuple[str, ...] = ()
        self.names: dict[str, str] = {}
        self.kept: set[str] = set()        # phones this monitor holds a claim of
        self.stale: dict[str, str] = {}    # phone -> Contact a previous keeper left (until we register)
        self.last_beat: float | None = None  # monotonic time of the last successful heartbeat
        self.beat_failures = 0
        self._lost: set[str] = set()       # claims found taken by others at a heartbeat
        self._owners: dict[str, bool] = {}  # phone -> ours, for the current members
        self._contacts: dict[str, str] = {}  # Contacts to record
        self._recorded: dict[str, str] = {}  # Contacts recorded
        self._short = False                # the last claim left phones of our share to others
        self._gone: set[str] = set()       # claims of phones that left the selection, to release

    # --- heartbeats ----------------------------------------------------------------------------

    async def beat(self) -> bool:
        """Renew the lease, record Contacts, read back the claims; True when the members changed
        or a claim was lost (a rebalance is due). Raises what the store raises."""
        view = await self.repo.fleet_heartbeat(self.id, self.name, self.lease)
        self.last_beat = time.monotonic()
        self.beat_failures = 0
        members = tuple(sorted(view.members))
        changed = members != self.members
        if changed:
            if self.members:
                log.info("fleet: %d monitor(s) alive (%s)", len(members), ", ".join(view.members[m] for m in members))
            self.members = members
            self._owners.clear()
        self.names = view.members
        if self._contacts:
            batch = dict(list(self._contacts.items())[:MAX_CONTACT_WRITES])
            await self.repo.fleet_contacts(self.id, batch)
            for pid, contact in batch.items():
                if self._contacts.get(pid) == contact:
                    del self._contacts[pid]
                self._recorded[pid] = contact
        held = await self.repo.fleet_kept(self.id)
        lost = self.kept - held
        if lost:
            log.warning("fleet: %d phone(s) were taken over by another monitor (this one's lease ran out); "
                        "un-registering them here", len(lost))
            self._lost |= lost
            changed = True
        return changed

    @property
    def wants_more(self) -> bool:
        """Phones of our share are still unclaimed (a claim failed): try again after the next beat."""
        return self._short

    def ours(self, phone_id: str) -> bool:
        o = self._owners.get(phone_id)
        if o is None:
            o = self._owners[phone_id] = rendezvous_owner(phone_id, self.members) == self.id
        return o

    # --- the share -----------------------------------------------------------------------------

    async def settle(self, selected: dict[str, int],
                     remove: Callable[[list[str]], Awaitable[None]]) -> dict[str, int]:
        """Match the claims to the share of ``selected`` (phone -> version): release the phones
        no longer ours (``remove`` un-REGISTERs them first), claim the ones that became ours;
        return the versions of the phones this monitor keeps now."""
        if self._lost:
            self.kept -= self._lost
            for pid in self._lost:
                self._recorded.pop(pid, None)
                self._contacts.pop(pid, None)
            self._lost = set()
        if self.id in self.members:
            target = {pid for pid in selected if self.ours(pid)}
        else:  # no successful heartbeat yet: keep what we hold, take nothing new
            target = self.kept & selected.keys()
        # Phones no longer selected (deleted, or outside --account/--phone): the caller stops them
        # like any removed phone, then calls release_gone(); only a handed-over phone is released here.
        gone = [pid for pid in self.kept if pid not in selected]
        if gone:
            self.kept.difference_update(gone)
            self._gone.update(gone)
        leaving = [pid for pid in self.kept if pid not in target]
        if leaving:
            await remove(leaving)                       # un-REGISTER first...
            await self.repo.fleet_release(self.id, leaving)  # ...then let another claim them
            self.kept.difference_update(leaving)
            for pid in leaving:
                self._recorded.pop(pid, None)
                self._contacts.pop(pid, None)
                self.stale.pop(pid, None)
        wanted = [pid for pid in target if pid not in self.kept]
        if wanted:
            got = await self.repo.fleet_claim(self.id, wanted)
            for pid, contact in got.items():
                self.kept.add(pid)
                if contact:
                    self.stale[pid] = contact
                    self._recorded[pid] = contact
            self._short = len(got) < len(wanted)
        else:
            self._short = False
        return {pid: v for pid, v in selected.items() if pid in self.kept}

    async def release_gone(self) -> None:
        """Release the claims of the phones that left the selection (after they were stopped)."""
        if self._gone:
            gone = sorted(self._gone)
            await self.repo.fleet_release(self.id, gone)
            self._gone.difference_update(gone)
            for pid in gone:
                self._recorded.pop(pid, None)
                self._contacts.pop(pid, None)
                self.stale.pop(pid, None)

    def stale_contacts(self, phone_id: str) -> tuple[str, ...]:
        c = self.stale.get(phone_id)
        return (c,) if c else ()

    def registered(self, phone_id: str, contact: str | None) -> None:
        """The phone is registered here with ``contact``: record it (at the next heartbeat)."""
        self.stale.pop(phone_id, None)
        if contact and phone_id in self.kept and self._recorded.get(phone_id) != contact:
            self._contacts[phone_id] = contact

    async def leave(self) -> None:
        """Delete this monitor's lease and claims (after it un-REGISTERed its phones)."""
        await self.repo.fleet_leave(self.id)
        self.kept.clear()
