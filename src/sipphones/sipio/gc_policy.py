"""The cyclic garbage collector's policy for a process that keeps a fleet of registrations.

CPython collects the youngest generation every 700 net allocations of container objects, and
the whole heap each time the objects that survived since the last full collection exceed a
quarter of it. A fleet that grows by thousands of phones per second (the monitor's first load,
a burst of restarts) makes every phone's long-lived objects (machine, binding, timers, config)
survive collection after collection, and they are scanned again and again: a fifth of the CPU
of a registration in ``bench/sip_micro.py``. That scanning finds nothing: refreshes,
re-registrations and un-REGISTERs leave no reference cycles behind (measured: 0 cyclic objects
after 4,900 refreshes of 1,000 phones). Cycles appear when a phone leaves the fleet (its
machine and driver refer to each other) and, rarely, on error paths.

So a fleet process (``sipphones monitor``; ``bench/sip_worker.py`` mirrors it) runs the
collector by the clock instead of by allocation count, with :class:`FleetCollector`:

* automatic collection off (``gc.disable()``); memory is still freed by reference counting the
  moment it is no longer used, as always;
* every ``young_interval`` seconds (10): ``gc.collect()`` then ``gc.freeze()``. The collection
  sees only the objects created since the last freeze, finds the cycles among them, and the
  survivors are frozen out of later collections: a tick costs in proportion to what changed;
* when phones leave (:meth:`FleetCollector.release`) and at the latest every ``full_interval``
  seconds (600): ``gc.unfreeze()`` first, so the next tick looks at the whole heap and frees
  every cycle, the removed phones' included, also cycles that formed among frozen objects;
* after a load of phones (:meth:`FleetCollector.settle`): a tick at once, so the new fleet is
  frozen before it starts working.

A burst of registrations thus pays for the collector once, at the next tick, instead of at every
few hundred allocations; the benchmark charges that tick to the burst.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Callable

__all__ = ["FleetCollector"]


class FleetCollector:
    """The collector on a timer (see the module's text). ``start()`` in a running loop,
    ``settle()`` after adding phones, ``release()`` when phones leave, ``stop()`` at the end."""

    def __init__(self, young_interval: float = 10.0, full_interval: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.young_interval = young_interval
        self.full_interval = full_interval
        self._clock = clock
        self._handle: asyncio.TimerHandle | None = None
        self._was_enabled = True
        self._full_due = True
        self._last_full = 0.0
        self.ticks = 0
        self.full_ticks = 0
        self.collected = 0
        self.running = False

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._last_full = self._clock()
        self._schedule()

    def _schedule(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(self.young_interval, self._on_timer)

    def _on_timer(self) -> None:
        self.tick()
        if self.running:
            self._schedule()

    def tick(self) -> int:
        """Collect what is not frozen (everything, when a full pass is due), then freeze the
        survivors. Returns the number of unreachable objects found."""
        if self._full_due or self._clock() - self._last_full >= self.full_interval:
            gc.unfreeze()
            self._full_due = False
            self._last_full = self._clock()
            self.full_ticks += 1
        found = gc.collect()
        gc.freeze()
        self.ticks += 1
        self.collected += found
        return found

    def settle(self) -> None:
        """Phones were added: freeze them (and whatever else lives) now."""
        if self.running:
            self.tick()

    def release(self) -> None:
        """Phones are leaving: their objects go back to the collector at the next tick."""
        if self.running:
            gc.unfreeze()
            self._full_due = True

    def stop(self) -> None:
        """Back to CPython's own policy."""
        if not self.running:
            return
        self.running = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()
