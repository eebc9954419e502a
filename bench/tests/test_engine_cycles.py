"""The premise of sipphones.sipio.gc_policy, measured on the real engine driven by the benchmark's
loop-back registrar (bench/sip_micro.py): refreshing phones create no cyclic garbage."""

from __future__ import annotations

import asyncio
import gc

import pytest


@pytest.fixture
def gc_restored():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if enabled else gc.disable)()


async def test_refreshes_leave_no_cycles_behind(gc_restored):
    """The premise of the policy, on the real engine: registered phones refreshing (binding,
    machine, transaction, digest, driver) create no cyclic garbage, so collecting by the clock
    keeps memory flat."""
    from bench.sip_micro import FakeRegistrar, LoopbackManager
    from bench.sip_worker import Counter, make_phones
    from sipphones.registration_config import registration_config
    from sipphones.sip.config import RegistrationPolicy, TransactionTimers
    from sipphones.sipio.agent import RegistrationAgent
    from sipphones.sipio.stack import SipStack

    class ShortGrants(FakeRegistrar):
        def __call__(self, data: bytes) -> bytes:
            return super().__call__(data).replace(b";expires=60", b";expires=2")

    manager = LoopbackManager()
    manager.registrar = ShortGrants()
    stack = SipStack(transports=manager, resolver=None)
    counter = Counter()
    agent = RegistrationAgent(stack, policy=RegistrationPolicy(timers=TransactionTimers(budget=5.0)),
                              on_event=counter, start_rate=0, max_in_flight=200)
    for p in make_phones("127.0.0.1:5060", "sip.test", "m", 0, 200, 1):
        agent.add(registration_config(p), p.id)
    gc.disable()
    for _ in range(200):
        if counter.registered >= 200:
            break
        await asyncio.sleep(0.01)
    gc.collect()
    first = counter.registered
    await asyncio.sleep(2.5)
    assert counter.registered - first >= 200         # every phone refreshed at least once
    assert gc.collect() == 0
    await agent.stop(timeout=5)
    await manager.close()
