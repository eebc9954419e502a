"""The cyclic garbage collector's policy for a process that keeps a fleet of registrations.

CPython runs a collection of the youngest generation every 700 net allocations of container
objects, and a full collection each time the objects that survived since the last full one
exceed a quarter of the long-lived heap. A fleet that grows by thousands of phones per second
(the monitor's first load, a ``check --all``) keeps the young generations busy and, as every
registered phone adds a score of long-lived objects (its machine, binding, timers, config), sets
off full collections that walk the whole fleet again and again: about a fifth of the CPU of a
registration in ``bench/sip_micro.py``. The engine itself makes next to no reference cycles
per registration, so almost all of that work finds nothing to free.

The policy, for processes whose job is the fleet (``sipphones monitor``, ``sipphones check``),
never for a library caller's process:

* :func:`tune_for_fleet` raises the youngest generation's threshold from 700 to 10,000 (the
  collector still runs, just less often; memory the engine frees is freed by reference
  counting as before);
* :func:`settle` after a batch of phones was loaded: one full collection, then ``gc.freeze()``,
  which moves every object alive now (the fleet just loaded, the imported modules) out of the
  collector's sight, so later full collections walk only what changed since;
* :func:`release` when phones leave the fleet: ``gc.unfreeze()``, so whatever reference cycles
  the removed phones' objects formed are found again by the next full collection.
"""

from __future__ import annotations

import gc

FLEET_THRESHOLDS = (10_000, 20, 10)


def tune_for_fleet() -> None:
    """Collect the young generations less often (see the module's text)."""
    gc.set_threshold(*FLEET_THRESHOLDS)


def settle() -> None:
    """Free what is garbage now, then keep what is alive out of later collections."""
    if gc.isenabled():
        gc.collect()
        gc.freeze()


def release() -> None:
    """Hand the frozen objects back to the collector (some of them may be garbage now)."""
    if gc.get_freeze_count():
        gc.unfreeze()
