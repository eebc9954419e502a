"""The store's side of monitors sharing a fleet (``sipphones.monitor.fleet``): monitor leases
renewed by heartbeats, and per-phone claims that say which monitor keeps each phone.

Exclusivity is the database's: a claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE``
per batch, which PostgreSQL (and SQLite) run atomically per row, so two monitors claiming the
same phone at once cannot both win. A claim succeeds only when the phone has no keeper, or its
keeper is the claimant, or its keeper's lease has run out. Lease times come from the
database's clock (PostgreSQL's ``clock_timestamp()``), so monitors on machines whose clocks
disagree still agree on who is alive.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sipphones.repository import FleetView
from sipphones.storage import schema as t

__all__ = ["FleetRows"]

_CHUNK = 1000                  # phone ids per statement
FORGET_DEAD_AFTER = 86400.0    # a monitor row dead this long is deleted (its claims stay claimable)


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    """In id order: monitors locking overlapping rows in one order cannot deadlock each other."""
    ids = sorted(ids)
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


class FleetRows:
    engine: Any
    sqlite: bool

    async def _db_now(self, conn) -> float:
        if self.sqlite:
            return time.time()  # one file on one machine: the process clock is the database's
        return float((await conn.execute(select(func.extract("epoch", func.clock_timestamp())))).scalar_one())

    def _alive(self, now: Any):
        m = t.monitors
        return m.c.heartbeat_at + m.c.lease_seconds > now

    async def fleet_heartbeat(self, monitor_id: str, name: str, lease: float) -> FleetView:
        """Renew ``monitor_id``'s lease (creating its row on the first beat); return the live
        monitors and the database's time. Rows dead for a day are deleted on the way."""
        m = t.monitors
        async with self.engine.begin() as conn:
            now = await self._db_now(conn)
            res = await conn.execute(update(m).where(m.c.id == monitor_id).values(heartbeat_at=now,
                                                                                   lease_seconds=lease))
            if res.rowcount == 0:
                await conn.execute(m.insert().values(id=monitor_id, name=name[:255], started_at=now,
                                                     heartbeat_at=now, lease_seconds=lease))
            await conn.execute(delete(m).where(m.c.heartbeat_at + m.c.lease_seconds < now - FORGET_DEAD_AFTER))
            rows = (await conn.execute(select(m.c.id, m.c.name).where(self._alive(now)).order_by(m.c.id))).all()
        return FleetView(now=now, members={r.id: r.name for r in rows})

    async def fleet_claim(self, monitor_id: str, phone_ids: Iterable[str]) -> dict[str, str]:
        """Claim each phone that has no live keeper other than ``monitor_id``; return the phones
        now kept by ``monitor_id``, each with the Contact its previous keeper left (``""``: none)."""
        k, p, m = t.phone_keepers, t.sip_phones, t.monitors
        got: dict[str, str] = {}
        insert = sqlite_insert if self.sqlite else pg_insert
        async with self.engine.begin() as conn:
            now = await self._db_now(conn)
            for chunk in _chunks(phone_ids):
                source = select(p.c.id, literal(monitor_id), literal(""), literal(now)).where(p.c.id.in_(chunk))
                stmt = insert(k).from_select(["phone_id", "monitor_id", "contact", "claimed_at"], source)
                live = select(m.c.id).where(self._alive(now)).scalar_subquery()
                stmt = stmt.on_conflict_do_update(
                    index_elements=[k.c.phone_id],
                    set_={"monitor_id": stmt.excluded.monitor_id, "claimed_at": stmt.excluded.claimed_at},
                    where=or_(k.c.monitor_id == stmt.excluded.monitor_id, k.c.monitor_id.not_in(live)),
                ).returning(k.c.phone_id, k.c.contact)
                for row in (await conn.execute(stmt)).all():
                    got[row.phone_id] = row.contact
        return got

    async def fleet_release(self, monitor_id: str, phone_ids: Iterable[str]) -> None:
        """Give up ``monitor_id``'s claims of these phones (after it un-registered them)."""
        k = t.phone_keepers
        async with self.engine.begin() as conn:
            for chunk in _chunks(phone_ids):
                await conn.execute(delete(k).where(k.c.monitor_id == monitor_id, k.c.phone_id.in_(chunk)))

    async def fleet_kept(self, monitor_id: str) -> set[str]:
        """The phones ``monitor_id`` holds a claim of."""
        k = t.phone_keepers
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(k.c.phone_id).where(k.c.monitor_id == monitor_id))).scalars())

    async def fleet_contacts(self, monitor_id: str, contacts: dict[str, str]) -> None:
        """Record the Contact each phone's binding holds (only phones ``monitor_id`` still keeps)."""
        if not contacts:
            return
        k = t.phone_keepers
        stmt = (update(k).where(and_(k.c.phone_id == bindparam("_pid"), k.c.monitor_id == monitor_id))
                .values(contact=bindparam("_contact")))
        rows = [{"_pid": pid, "_contact": contacts[pid][:512]} for pid in sorted(contacts)]  # id order: see _chunks
        async with self.engine.begin() as conn:
            for i in range(0, len(rows), _CHUNK):
                await conn.execute(stmt, rows[i:i + _CHUNK])

    async def fleet_leave(self, monitor_id: str) -> None:
        """Drop every claim of ``monitor_id`` and its lease (a clean stop: the phones are free)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.phone_keepers).where(t.phone_keepers.c.monitor_id == monitor_id))
            await conn.execute(delete(t.monitors).where(t.monitors.c.id == monitor_id))

    async def fleet_forget_others(self, monitor_id: str) -> None:
        """End every other monitor's lease now (SQLite, where the file lock proves them gone)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.monitors).where(t.monitors.c.id != monitor_id))
