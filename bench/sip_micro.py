"""In-process micro-benchmark of one complete digest registration, without sockets or peers.

    .venv/bin/python bench/sip_micro.py                 # CPU per registration, 3 runs
    .venv/bin/python bench/sip_micro.py --profile out.prof --phones 20000

The real code path of ``RegistrationAgent`` (agent, ``MachineRunner``, ``TransportManager``
dispatch, ``UdpFlow._on_datagram`` -> ``parse_message``, the registration machine, transaction,
digest client, serializer) runs on an asyncio loop; only the socket is replaced by a loop-back
"registrar" that answers like kamailio (401 with a fresh nonce, then 200 listing the Contact with
``expires``), built with plain bytes operations so it costs little next to the engine. Its own
time is measured and subtracted. This isolates the engine's CPU from the machine's load (the
figure is steadier than bench/sip_engine.py's) and gives clean profiles; it is a development
tool: the benchmark figure is the one against kamailio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sip_worker import (  # noqa: E402
    Counter, GcClock, add_gc_options, collector_for, cpu_seconds, make_phones,
)
from sipphones.registration_config import registration_config  # noqa: E402
from sipphones.sip.config import RegistrationPolicy, TransactionTimers  # noqa: E402
from sipphones.sipio.agent import RegistrationAgent  # noqa: E402
from sipphones.sipio.stack import SipStack  # noqa: E402
from sipphones.sipio.manager import TransportManager  # noqa: E402
from sipphones.sipio.udp import UdpFlow  # noqa: E402


class FakeRegistrar:
    """Answers REGISTERs like kamailio does (stateless 401, then 200), with bytes operations."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.n = 0

    def __call__(self, data: bytes) -> bytes:
        t = time.perf_counter()
        head = data.split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        keep: dict[bytes, bytes] = {}
        contact = b""
        authorized = False
        expires = b"3600"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name in (b"via", b"from", b"call-id", b"cseq", b"to"):
                keep[name] = line
            elif name == b"contact":
                contact = value.strip()
            elif name == b"authorization":
                authorized = True
            elif name == b"expires":
                expires = value.strip()
        self.n += 1
        via = keep[b"via"]
        if b"rport" in via and b"rport=" not in via:
            via = via.replace(b";rport", b";rport=5060", 1)
        to = keep[b"to"] + b";tag=b24bb9578ad9f7a42fd21e1eca97a3db.6ce2ec14"
        common = [via, keep[b"from"], to, keep[b"call-id"], keep[b"cseq"]]
        if not authorized:
            nonce = hashlib.md5(self.n.to_bytes(8, "big")).hexdigest()[:32].encode()
            out = [b"SIP/2.0 401 Unauthorized", *common,
                   b'WWW-Authenticate: Digest realm="sip.test", nonce="' + nonce + b'", qop="auth"',
                   b"Server: kamailio (5.6.3 (x86_64/linux))", b"Content-Length: 0", b"", b""]
        else:
            out = [b"SIP/2.0 200 OK", *common, b"Contact: " + contact + b";expires=" + expires,
                   b"Server: kamailio (5.6.3 (x86_64/linux))", b"Content-Length: 0", b"", b""]
        reply = b"\r\n".join(out)
        self.seconds += time.perf_counter() - t
        return reply


class LoopbackFlow(UdpFlow):
    """A UDP flow whose "socket" hands every datagram to the fake registrar and its answer back
    to ``_on_datagram`` on the next loop iteration, as a datagram from the network would be."""

    registrar: FakeRegistrar
    loop: asyncio.AbstractEventLoop

    async def open(self) -> None:
        self.local_host, self.local_port = "127.0.0.1", 40000
        self.loop = asyncio.get_running_loop()   # held, as UdpFlow holds its loop

    def send(self, data: bytes) -> None:
        reply = self.registrar(data)
        self.loop.call_soon(self._on_datagram, reply)

    def _close_transport(self) -> None:
        pass


class LoopbackManager(TransportManager):
    async def _open(self, target, key, timeout):  # type: ignore[override]
        flow = LoopbackFlow(self, target, key)
        flow.registrar = self.registrar  # type: ignore[attr-defined]
        await flow.open()
        self._flows[key] = flow
        self.stats.flows_opened += 1
        return flow


async def run(phones: int, concurrency: int, gc_policy: str = "fleet") -> dict:
    collector = collector_for(gc_policy)
    collector.start()
    registrar = FakeRegistrar()
    manager = LoopbackManager()
    manager.registrar = registrar  # type: ignore[attr-defined]
    stack = SipStack(transports=manager, resolver=None)  # type: ignore[arg-type]  # IP literals only
    counter = Counter()
    configs = [(p.id, registration_config(p)) for p in make_phones("127.0.0.1:5060", "sip.test", "m", 0, phones, 60)]
    agent = RegistrationAgent(stack, policy=RegistrationPolicy(timers=TransactionTimers(budget=5.0)),
                              on_event=counter, start_rate=0, max_in_flight=concurrency)
    gc.collect()
    gcc = GcClock()
    g0 = gcc.snapshot()
    c0, t0 = cpu_seconds(), time.perf_counter()
    for pid, cfg in configs:
        agent.add(cfg, pid)
    collector.settle()  # as FleetMonitor does after loading phones
    for _ in range(100000):
        if counter.registered + counter.failed >= phones:
            break
        await asyncio.sleep(0)
    collector.tick()  # the collection the burst deferred: charged to the burst
    c1, t1 = cpu_seconds(), time.perf_counter()
    gcs = gcc.since(g0)
    gc.callbacks.remove(gcc._cb)
    reg_seconds = registrar.seconds
    registrar.seconds = 0.0
    c2 = cpu_seconds()
    await agent.stop(timeout=30)
    c3 = cpu_seconds()
    await manager.close()
    collector.stop()
    engine = (c1 - c0) - reg_seconds
    return {"phones": phones, "registered": counter.registered, "failed": counter.failed,
            "cpu_us_per_registration": round(1e6 * engine / max(1, counter.registered), 1),
            "registrar_us_per_message": round(1e6 * reg_seconds / max(1, registrar.n), 2),
            "cpu_us_per_unregister": round(1e6 * ((c3 - c2) - registrar.seconds) / max(1, counter.unregistered), 1),
            "wall_seconds": round(t1 - t0, 3),
            "gc_us_per_registration": round(1e6 * sum(gcs["seconds"]) / max(1, counter.registered), 1),
            "gc": gcs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phones", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", help="cProfile of one run into this file")
    add_gc_options(ap)
    args = ap.parse_args(argv)

    if args.no_gc:
        gc.disable()
    if args.profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
        result = asyncio.run(run(args.phones, args.concurrency, args.gc))
        prof.disable()
        prof.dump_stats(args.profile)
        print(json.dumps(result))
        return 0
    results = []
    for _ in range(args.runs):
        results.append(asyncio.run(run(args.phones, args.concurrency, args.gc)))
        print(json.dumps(results[-1]), flush=True)
    best = min(r["cpu_us_per_registration"] for r in results)
    print(f"best: {best} us CPU per complete digest registration (pid {os.getpid()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
