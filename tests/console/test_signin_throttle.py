"""The sign-in throttle's rule, on a clock of our own: free attempts, then doubling waits, bounded."""

from __future__ import annotations

from sipphones.console.signin import FIRST_WAIT, FREE_FAILURES, MAX_KEYS, MAX_WAIT, SignInThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_waits_double_after_the_free_failures_and_a_success_clears_them():
    clock = Clock()
    t = SignInThrottle(clock)
    for _ in range(FREE_FAILURES):
        assert t.wait("client:a") == 0
        t.failed("client:a")
    assert t.wait("client:a") == FIRST_WAIT
    assert t.wait("client:b") == 0                 # another app is not slowed
    clock.now += FIRST_WAIT
    assert t.wait("client:a") == 0
    t.failed("client:a")
    assert t.wait("client:a") == 2 * FIRST_WAIT
    for _ in range(20):
        clock.now += MAX_WAIT
        t.failed("client:a")
    assert t.wait("client:a") == MAX_WAIT
    t.succeeded("client:a")
    assert t.wait("client:a") == 0


def test_the_counts_are_bounded():
    t = SignInThrottle(Clock())
    for i in range(MAX_KEYS + 10):
        t.failed(f"client:{i}")
    assert t.wait("client:0") == 0                # the oldest forgotten
    newest = f"client:{MAX_KEYS + 9}"
    t.failed(newest)
    t.failed(newest)
    assert t.wait(newest) == FIRST_WAIT            # the newest still counted
