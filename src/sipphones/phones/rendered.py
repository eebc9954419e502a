"""List items rendered once per stored version of a phone (a bounded, per-process memo).

A list page is re-read far more often than its phones change (test suites poll it, consoles
refresh it). Rendering an item means reading all its columns, decrypting its password and
building the response shape, about three quarters of a page's cost. ``RenderedItems`` keeps what
``render`` made of each phone, keyed by the phone's id and its row's **version**: 1 when created,
one more with every write of the row (the store bumps it in the statement of the write), so it
names one version of the row exactly. A page then reads just ``(id, version)`` pairs; an item
whose version matches is served as rendered, anything else (a new or changed phone) is read and
rendered again.

What it holds is what a response would hold anyway (passwords included), in the memory of a
process that already holds the key that decrypts every password; it never outlives the process.
Bounded: past ``capacity`` phones the oldest entries go first (0: render every time, keep
nothing). One entry per phone: a changed phone replaces its entry.
"""

from __future__ import annotations

from typing import Callable, Generic, Sequence, TypeVar

from sipphones.repository import PhoneRecord

T = TypeVar("T")

DEFAULT_CAPACITY = 20_000


class RenderedItems(Generic[T]):
    def __init__(self, render: Callable[[PhoneRecord], T], capacity: int = DEFAULT_CAPACITY):
        if capacity < 0:
            raise ValueError("capacity must be 0 (render every time, keep nothing) or more")
        self.render = render
        self.capacity = capacity
        self._entries: dict[str, tuple[object, T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, versions: Sequence[Sequence]) -> list[T] | None:
        """The rendered items of ``versions`` (rows that start with an id and its version, in page
        order), or None when any of them is missing or of another version (the page must then be
        read whole)."""
        entries = self._entries
        out: list[T] = []
        append = out.append
        for row in versions:
            entry = entries.get(row[0])
            if entry is None or entry[0] != row[1]:
                return None
            append(entry[1])
        return out

    def add(self, records: list[PhoneRecord], versions: Sequence[object]) -> list[T]:
        """Render ``records`` (whose versions are ``versions``, same order), keep them, return them."""
        render = self.render
        if not self.capacity:
            return [render(record) for record in records]
        entries = self._entries
        out: list[T] = []
        for record, version in zip(records, versions):
            pid = record.id
            entry = entries.get(pid)
            if entry is not None:
                if entry[0] == version:  # this version is rendered already
                    out.append(entry[1])
                    continue
                del entries[pid]  # re-inserted last: a re-rendered phone is the newest entry
            elif len(entries) >= self.capacity:
                del entries[next(iter(entries))]
            item = render(record)
            entries[pid] = (version, item)
            out.append(item)
        return out
