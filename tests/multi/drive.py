"""Driving several instances at once from the test: clients holding a token, calls released
together, a burst inside one clock second."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import httpx

from tests.ratelimit.helpers import wait_for_next_second
from tests.servers import ServerProcess, get_token

BURST_ATTEMPTS = 5


@contextlib.contextmanager
def clients(instances: list[ServerProcess], creds) -> Iterator[list[httpx.Client]]:
    """A client per instance, each with a token that instance issued; all closed at the end."""
    with contextlib.ExitStack() as stack:
        out = []
        for srv in instances:
            c = stack.enter_context(srv.client())
            c.headers["Authorization"] = f"Bearer {get_token(c, creds)}"
            out.append(c)
        yield out


def at_once(calls):
    """Run the ``calls`` (functions of no argument) in threads released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait(10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def burst(clients_: list[httpx.Client], per_client: int, path: str = "/v2/sip_phones/phones") -> list[httpx.Response]:
    """``per_client`` GETs of ``path`` on each client, all at once, inside one clock second
    (tried again, bounded, when a loaded machine spreads them over two)."""
    for _ in range(BURST_ATTEMPTS):
        wait_for_next_second(0.05)
        started = time.time()
        answers = at_once([lambda c=c: c.get(path) for c in clients_ for _ in range(per_client)])
        if int(time.time()) == int(started):
            return answers
    raise AssertionError(f"could not fit the burst into one clock second in {BURST_ATTEMPTS} attempts")


def assert_one_shared_limit(answers: list[httpx.Response], limit: int) -> None:
    """Exactly ``limit`` requests admitted, each counted once (every X-RateLimit-Remaining value
    from limit - 1 down to 0 appears once), the rest refused with Zoom's 429."""
    admitted = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(admitted) == limit and len(refused) == len(answers) - limit, [r.status_code for r in answers]
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in admitted) == list(range(limit))
    assert {r.headers["x-ratelimit-limit"] for r in admitted} == {str(limit)}
    assert all(r.json()["code"] == 429 for r in refused)
