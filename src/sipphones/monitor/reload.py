"""Which phones the monitor should manage, and what changed since it last looked.

The monitor learns about phones created, changed or deleted (through the API, the CLI or another
tool writing the same store) by polling ``Repository.phone_versions()``: a map of phone id to
``updated_at``. Comparing two such maps is all it takes to know which registrations to start,
restart or stop, so that comparison lives here as pure functions that tests can exercise
without a store or a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ["PhoneSelection", "FleetChanges", "diff_versions"]


@dataclass(frozen=True)
class PhoneSelection:
    """The subset of the store the operator asked the monitor to keep registered.

    Empty ``accounts`` means every account; empty ``phones`` means every phone of those
    accounts. When both are given, a phone must satisfy both (filters narrow, never widen).
    """

    accounts: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()

    @classmethod
    def of(cls, accounts: Iterable[str] = (), phones: Iterable[str] = ()) -> "PhoneSelection":
        return cls(frozenset(a for a in accounts if a), frozenset(p for p in phones if p))

    @property
    def account_queries(self) -> list[str | None]:
        """The ``account_id`` arguments to pass to the store (``None``: every account)."""
        return sorted(self.accounts) if self.accounts else [None]

    def keep(self, versions: Mapping[str, float]) -> dict[str, float]:
        """Apply the phone filter to a ``phone_versions`` result (accounts are filtered by the store)."""
        if not self.phones:
            return dict(versions)
        return {pid: v for pid, v in versions.items() if pid in self.phones}

    def wants(self, phone_id: str, account_id: str) -> bool:
        return ((not self.accounts or account_id in self.accounts)
                and (not self.phones or phone_id in self.phones))


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


def diff_versions(managed: Mapping[str, float], current: Mapping[str, float]) -> FleetChanges:
    """Compare the versions the monitor runs with (``managed``) against the store's (``current``).

    A phone is *changed* when its ``updated_at`` differs in either direction: a restored backup
    may carry an older timestamp, and any difference means the running registration was built
    from another record than the one stored now.
    """
    added = sorted(pid for pid in current if pid not in managed)
    removed = sorted(pid for pid in managed if pid not in current)
    changed = sorted(pid for pid, v in current.items() if pid in managed and managed[pid] != v)
    return FleetChanges(tuple(added), tuple(changed), tuple(removed))
