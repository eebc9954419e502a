"""The cyclic garbage collector paused while a ``serve`` process starts.

Starting a server process allocates a few hundred thousand objects that live as long as the
process (modules, classes, SQLAlchemy's and pydantic's tables, the app), and the collector
keeps walking them while they arrive: on the 2-vCPU machine, importing the CLI, uvicorn and the
app took ~310 ms with it and ~260 ms without it. None of it is garbage to look for, so ``serve``
pauses the collector from its launch until the app has started (the end of its lifespan
startup), in the one-process server, in each worker and until the supervisor of several workers
starts them. Memory is freed by reference counting all the while, as always; only the search for
reference cycles waits. Anything else (tests calling ``create_app``, other commands) never
pauses it, and ``resume`` then does nothing.

Measured with and without it in one run (``bench/ab_optimisations.py gc``, 15 interleaved
rounds, a loaded 2-core machine): with two workers the process tree's CPU until the first
``/healthz`` 200 is 12.5 % lower (1,120 against 1,280 ms; paired ratio 0.894, lower in 14 of 15
rounds) and the cold start 22 % shorter (paired ratio 0.78); with one worker the difference is
inside the noise (paired CPU ratio 0.98).
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Turn automatic collection off, if it is on (``resume`` turns it back on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Turn automatic collection back on, if ``pause`` turned it off; else nothing."""
    global _paused
    if _paused:
        _paused = False
        gc.enable()


def paused() -> bool:
    return _paused
