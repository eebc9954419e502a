"""The collector policy of fleet processes (sipphones.sipio.gc_policy)."""

from __future__ import annotations

import gc
import weakref

import pytest

from sipphones.sipio import gc_policy


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def restore_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def cycle() -> tuple[Node, weakref.ref]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def test_tune_raises_the_young_threshold_only(restore_gc):
    gc_policy.tune_for_fleet()
    assert gc.get_threshold() == (10_000, 20, 10)
    assert gc.isenabled()


def test_settle_collects_garbage_first_then_freezes_what_lives(restore_gc):
    garbage, garbage_ref = cycle()
    live, live_ref = cycle()
    del garbage
    gc_policy.settle()
    assert garbage_ref() is None            # collected before the freeze, not frozen forever
    assert gc.get_freeze_count() > 0
    del live
    gc.collect()
    assert live_ref() is not None           # frozen: out of the collector's sight...
    gc_policy.release()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert live_ref() is None               # ...until released, then collected like any garbage


def test_settle_respects_a_disabled_collector(restore_gc):
    gc.disable()
    try:
        gc_policy.settle()
        assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


def test_release_without_freeze_is_harmless(restore_gc):
    gc_policy.release()
    assert gc.get_freeze_count() == 0
