"""The shared timer queue of the driver, on a real event loop with short real delays."""

from __future__ import annotations

import asyncio

from sipphones.sipio.timers import TimerQueue


async def test_callbacks_run_in_deadline_order_and_never_early():
    loop = asyncio.get_running_loop()
    queue = TimerQueue(loop)
    fired: list[tuple[str, float, float]] = []
    start = loop.time()
    for name, delay in (("c", 0.03), ("a", 0.01), ("b", 0.02), ("a2", 0.01)):
        when = start + delay
        queue.call_at(when, lambda n=name, w=when: fired.append((n, w, loop.time())))
    await asyncio.sleep(0.08)
    assert [n for n, _, _ in fired] == ["a", "a2", "b", "c"]   # ties keep their scheduling order
    assert all(ran >= when for _, when, ran in fired)
    assert len(queue) == 0


async def test_cancelled_entries_do_not_run_and_the_queue_compacts():
    loop = asyncio.get_running_loop()
    queue = TimerQueue(loop)
    fired: list[int] = []
    entries = [queue.call_at(loop.time() + 0.02, lambda i=i: fired.append(i)) for i in range(1000)]
    for entry in entries[:900]:
        queue.cancel(entry)
    queue.cancel(entries[0])                      # cancelling twice is a no-op
    assert len(queue) == 100
    assert len(queue._heap) < 1000                # rebuilt once most of it was cancelled
    await asyncio.sleep(0.06)
    assert fired == list(range(900, 1000))
    queue.cancel(entries[950])                    # after it ran: a no-op
    assert len(queue) == 0


async def test_a_failing_callback_does_not_stop_the_others_and_reschedules_work():
    loop = asyncio.get_running_loop()
    queue = TimerQueue(loop)
    fired: list[str] = []

    def boom() -> None:
        raise RuntimeError("machine bug")

    def again() -> None:
        fired.append("first")
        queue.call_at(loop.time() + 0.01, lambda: fired.append("later"))   # scheduled from a callback

    queue.call_at(loop.time() + 0.01, boom)
    queue.call_at(loop.time() + 0.01, again)
    await asyncio.sleep(0.06)
    assert fired == ["first", "later"]


async def test_an_earlier_deadline_rearms_the_loop_timer_and_close_drops_everything():
    loop = asyncio.get_running_loop()
    queue = TimerQueue(loop)
    fired: list[str] = []
    queue.call_at(loop.time() + 5.0, lambda: fired.append("late"))
    queue.call_at(loop.time() + 0.01, lambda: fired.append("soon"))   # must not wait for the 5 s one
    await asyncio.sleep(0.05)
    assert fired == ["soon"]
    queue.close()
    assert len(queue) == 0
    await asyncio.sleep(0.01)
    assert fired == ["soon"]
