"""Which phones the monitor should manage, and what changed since it last looked.

The monitor learns about phones created, changed or deleted (through the API, the CLI or another
tool writing the same store) by polling ``Repository.phone_versions()``: a map of phone id to
its row's version (one more with every write of the row, ``SipPhone.version``). Comparing two such maps is all it takes to know which registrations to start,
restart or stop, so that comparison lives here as pure functions that tests can exercise
without a store or a network.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ["PhoneSelection", "FleetChanges", "diff_versions", "shard_of"]


def shard_of(phone_id: str, shards: int) -> int:
    """Which of ``shards`` worker processes keeps this phone: the same answer in every process
    and every run (CRC-32 of the id, not Python's salted ``hash``)."""
    return zlib.crc32(phone_id.encode()) % shards if shards > 1 else 0


@dataclass(frozen=True)
class PhoneSelection:
    """The subset of the store the operator asked the monitor to keep registered.

    Empty ``accounts`` means every account; empty ``phones`` means every phone of those
    accounts. When both are given, a phone must satisfy both (filters narrow, never widen).
    ``shard``/``shards``: a worker process of ``monitor --workers N`` keeps only the phones
    :func:`shard_of` gives it.
    """

    accounts: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    shard: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise ValueError(f"shard {self.shard} of {self.shards} does not exist")

    @classmethod
    def of(cls, accounts: Iterable[str] = (), phones: Iterable[str] = (), *,
           shard: int = 0, shards: int = 1) -> "PhoneSelection":
        return cls(frozenset(a for a in accounts if a), frozenset(p for p in phones if p), shard, shards)

    @property
    def account_queries(self) -> list[str | None]:
        """The ``account_id`` arguments to pass to the store (``None``: every account)."""
        return sorted(self.accounts) if self.accounts else [None]

    def keep(self, versions: Mapping[str, int]) -> dict[str, int]:
        """Apply the phone and shard filters to a ``phone_versions`` result (accounts are
        filtered by the store)."""
        if not self.phones and self.shards == 1:
            return dict(versions)
        return {pid: v for pid, v in versions.items() if self._mine(pid)}

    def wants(self, phone_id: str, account_id: str) -> bool:
        return (not self.accounts or account_id in self.accounts) and self._mine(phone_id)

    def _mine(self, phone_id: str) -> bool:
        return ((not self.phones or phone_id in self.phones)
                and (self.shards == 1 or shard_of(phone_id, self.shards) == self.shard))


@dataclass(frozen=True)
class FleetChanges:
    """What to do to go from the managed set to the store's current one (ids, sorted)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def __len__(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)


def diff_versions(managed: Mapping[str, int], current: Mapping[str, int]) -> FleetChanges:
    """Compare the versions the monitor runs with (``managed``) against the store's (``current``).

    A phone is *changed* when its version differs in either direction: a restored backup may
    carry an older one, and any difference means the running registration was built from another
    record than the one stored now.
    """
    added = sorted(pid for pid in current if pid not in managed)
    removed = sorted(pid for pid in managed if pid not in current)
    changed = sorted(pid for pid, v in current.items() if pid in managed and managed[pid] != v)
    return FleetChanges(tuple(added), tuple(changed), tuple(removed))
