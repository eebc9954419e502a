"""Instruction counts per registration of the engine, immune to the machine's load (development tool).

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
        --zero-before=os_getpgrp --dump-before=os_getsid .venv/bin/python bench/sip_callgrind.py 2000
    grep ^summary: /tmp/cg.out.1          # instructions of the window; divide by the phone count
    callgrind_annotate --inclusive=yes /tmp/cg.out.1 | less

``bench/sip_micro.py``'s run (the real agent, driver, parser, machine, digest and serializer on
an asyncio loop, a loop-back "registrar" instead of the socket) between two markers:
``os.getpgrp()`` just before the first ``add`` and ``os.getsid(0)`` after the last 200 and the
collector's tick, which callgrind's ``--zero-before``/``--dump-before`` turn into a dump holding
only that window (``<out>.1``). Under valgrind the run is ~50x slower, so T1 is 30 s (no
retransmissions: the counts stay deterministic) and the collector ticks only when the burst
starts and ends (``FleetCollector`` by the clock would tick more often in a slow run). The
window includes the fake registrar's own Python work (~112k instructions per registration,
the same for every engine version: compare versions, not absolute figures).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import sip_micro as m  # noqa: E402
from sipphones.sipio.gc_policy import FleetCollector  # noqa: E402


async def run(phones: int, concurrency: int = 200) -> None:
    collector = FleetCollector(young_interval=1e9, full_interval=1e9)
    collector.start()
    registrar = m.FakeRegistrar()
    manager = m.LoopbackManager()
    manager.registrar = registrar  # type: ignore[attr-defined]
    stack = m.SipStack(transports=manager, resolver=None)  # type: ignore[arg-type]
    counter = m.Counter()
    configs = [(p.id, m.registration_config(p))
               for p in m.make_phones("127.0.0.1:5060", "sip.test", "m", 0, phones, 60)]
    policy = m.RegistrationPolicy(timers=m.TransactionTimers(t1=30.0, t2=30.0, budget=600.0))
    agent = m.RegistrationAgent(stack, policy=policy, on_event=counter, start_rate=0, max_in_flight=concurrency)
    gc.collect()
    os.getpgrp()   # marker: --zero-before=os_getpgrp
    for pid, cfg in configs:
        agent.add(cfg, pid)
    collector.settle()
    for _ in range(1_000_000):
        if counter.registered + counter.failed >= phones:
            break
        await asyncio.sleep(0)
    collector.tick()
    os.getsid(0)   # marker: --dump-before=os_getsid
    print(f"registered {counter.registered} failed {counter.failed} registrar messages {registrar.n}",
          file=sys.stderr)
    await agent.stop(timeout=30)
    await manager.close()
    collector.stop()


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
