"""The collector policy of fleet processes (sipphones.sipio.gc_policy.FleetCollector)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from sipphones.sipio.gc_policy import FleetCollector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


@pytest.fixture
def gc_restored():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_collects_by_the_clock_not_by_allocations(gc_restored):
    c = FleetCollector(young_interval=0.05)
    c.start()
    try:
        assert not gc.isenabled()                    # automatic collection is off...
        ref = cycle()[1]                             # garbage at once
        for _ in range(400):                         # bounded: 20 s (the first tick is a full pass)
            if c.ticks >= 2:
                break
            await asyncio.sleep(0.05)
        assert c.ticks >= 2
        assert ref() is None and c.collected >= 2    # ...and the timer collected the cycle
        assert gc.get_freeze_count() > 0             # survivors frozen after each tick
    finally:
        c.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0


async def test_frozen_cycles_come_back_on_release_and_on_the_full_pass(gc_restored):
    clock = Clock()
    c = FleetCollector(young_interval=3600, full_interval=600, clock=clock)
    c.start()
    try:
        live, ref = cycle()
        c.settle()                                   # first tick: a full pass, then freeze
        assert c.full_ticks == 1
        del live                                     # garbage now, but frozen
        c.tick()
        assert ref() is not None and c.full_ticks == 1
        c.release()                                  # phones left: the next tick sees everything
        c.tick()
        assert ref() is None and c.full_ticks == 2

        live, ref = cycle()
        c.tick()
        del live
        clock.now += 601                             # no release for ten minutes: a full pass anyway
        c.tick()
        assert ref() is None and c.full_ticks == 3
    finally:
        c.stop()


async def test_stop_restores_a_disabled_collector_as_it_was(gc_restored):
    gc.disable()
    c = FleetCollector()
    c.start()
    c.stop()
    assert not gc.isenabled()
    c.stop()                                         # twice: harmless
    c.release()
    c.settle()                                       # not running: no tick
    assert c.ticks == 0
