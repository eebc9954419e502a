"""Many deadlines behind one asyncio timer: the timer requests of thousands of machines.

Every registration machine asks for exactly one timer at a time (``SetTimer``) and replaces it
after nearly every event, so ten thousand phones meant ten thousand ``loop.call_at`` handles,
one cancelled handle per event, and heap operations whose comparisons run in Python
(``TimerHandle.__lt__``) plus a copied ``contextvars.Context`` per handle. A :class:`TimerQueue`
keeps ``[when, seq, callback]`` lists in one heap (compared in C, cancelled by clearing the
callback) and keeps one loop handle armed for the earliest entry.

Callbacks run on the loop like ``call_at`` callbacks, never before their time, in deadline order
(ties in scheduling order); an exception in one is logged and does not stop the others.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from typing import Callable

__all__ = ["TimerQueue", "TimerEntry"]

log = logging.getLogger(__name__)

TimerEntry = list  # [when, sequence number, callback or None once cancelled or run]

# Rebuild the heap when more than this many cancelled entries make up over half of it.
_COMPACT_MIN = 256


class TimerQueue:
    """One event loop's shared timer (see the module docstring)."""

    __slots__ = ("loop", "_heap", "_seq", "_handle", "_handle_at", "_cancelled", "_firing")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._heap: list[TimerEntry] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_at: float | None = None
        self._cancelled = 0
        self._firing = False

    def __len__(self) -> int:
        """Entries waiting to run (cancelled ones excluded)."""
        return len(self._heap) - self._cancelled

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerEntry:
        """Run ``callback()`` once the loop's clock reaches ``when``; returns the entry to cancel."""
        entry = [when, next(self._seq), callback]
        heapq.heappush(self._heap, entry)
        if not self._firing and (self._handle_at is None or when < self._handle_at):
            self._arm(when)
        return entry

    def cancel(self, entry: TimerEntry) -> None:
        """Forget ``entry`` (no-op once it ran or was cancelled)."""
        if entry[2] is None:
            return
        entry[2] = None
        self._cancelled += 1
        heap = self._heap
        if self._cancelled > _COMPACT_MIN and 2 * self._cancelled > len(heap):
            live = [e for e in heap if e[2] is not None]
            heapq.heapify(live)
            self._heap = live
            self._cancelled = 0

    def close(self) -> None:
        """Drop every entry and the loop handle."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._handle_at = None
        for entry in self._heap:
            entry[2] = None
        self._heap = []
        self._cancelled = 0

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self.loop.call_at(when, self._fire)
        self._handle_at = when

    def _fire(self) -> None:
        self._handle = self._handle_at = None
        heap = self._heap
        now = self.loop.time()
        self._firing = True
        try:
            # Bounded: the entries present now, plus a few that callbacks may add for "now".
            for _ in range(len(heap) + 64):
                if not heap or heap[0][0] > now:
                    break
                entry = heapq.heappop(heap)
                callback = entry[2]
                if callback is None:
                    self._cancelled -= 1
                    continue
                entry[2] = None
                try:
                    callback()
                except Exception:  # one machine's bug must not stop everyone else's timers
                    log.exception("timer callback failed")
                heap = self._heap   # a callback's cancel() may have compacted it
        finally:
            self._firing = False
        if self._heap:
            self._arm(self._heap[0][0])
