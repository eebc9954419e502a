"""Worker processes of the SIP benchmark (started by ``bench/sip_engine.py``, one JSON line out).

Each worker imports only ``sipphones`` (no test helpers, no certificate library) so the CPU and
memory it reports are the engine's, not the harness's. Two jobs:

``throughput``
    Complete digest registrations (REGISTER -> 401 -> REGISTER with Authorization -> 200) of
    ``--count`` distinct phones through :class:`~sipphones.sipio.agent.RegistrationAgent`, the
    code path of ``sipphones monitor`` (machine, driver, shared UDP flow, parser, digest client).
    First registrations are not paced (``start_rate=0``); ``--concurrency`` caps the phones whose
    first REGISTER is unanswered. Counted: ``Registered`` reports per second of wall time from the
    first ``add`` to the last 200, and the process CPU time in that window. Then every phone is
    stopped (un-REGISTER, pre-authorized with the remembered nonce) and that is timed too.
    Repeated ``--rounds`` times with fresh machines (new Call-IDs).

``hold``
    Keeps ``--count`` phones registered with ``--expire-minutes`` (1 = Expires 60, refreshed at
    half the grant minus jitter by the default policy) for ``--hold`` seconds after the last
    first registration, printing a ``ready`` line when all are registered so the harness can
    sample this process's CPU and RSS from /proc; counts refreshes, failures and expiries.

Both bound every wait by time; the loopback registrar is ``--server`` (``host:port``, UDP).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the repository root, and not from bench/ itself (its
    # profile.py would shadow the standard library's, which cProfile imports).
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sipphones.phones.models import ServerSet, SipPhone, Transport  # noqa: E402
from sipphones.registration_config import registration_config  # noqa: E402
from sipphones.sip.config import RegistrationPolicy, TransactionTimers  # noqa: E402
from sipphones.sip.events import Expired, Registered, RegistrationFailed, Unregistered
from sipphones.monitor.reload import shard_of  # noqa: E402
from sipphones.sipio.gc_policy import FleetCollector  # noqa: E402
from sipphones.sipio.agent import AgentEvent, RegistrationAgent  # noqa: E402
from sipphones.sipio.stack import SipStack  # noqa: E402


def user_name(prefix: str, i: int) -> str:
    return f"{prefix}{i:06d}"


def password(prefix: str, i: int) -> str:
    return f"pw{prefix}{i:06d}"


def make_phones(server: str, domain: str, prefix: str, first: int, count: int, expire_minutes: int) -> list[SipPhone]:
    sets = (ServerSet(register_server=server, transport_protocol=Transport.UDP), ServerSet(), ServerSet())
    return [SipPhone(id=f"bench-{prefix}-{i}", account_id="bench", user_email=f"{user_name(prefix, i)}@bench.example",
                     user_name=user_name(prefix, i), authorization_name=user_name(prefix, i),
                     password=password(prefix, i), domain=domain, servers=sets,
                     registration_expire_time=expire_minutes)
            for i in range(first, first + count)]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_split() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


class GcClock:
    """Time spent in the cyclic garbage collector, per generation (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            g = info["generation"]
            self.seconds[g] += time.perf_counter() - self._t
            self.count[g] += 1

    def snapshot(self) -> tuple[list[float], list[int]]:
        return list(self.seconds), list(self.count)

    def since(self, snap: tuple[list[float], list[int]]) -> dict:
        s, c = snap
        return {"seconds": [round(a - b, 4) for a, b in zip(self.seconds, s)],
                "collections": [a - b for a, b in zip(self.count, c)]}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Counter:
    """Counts the agent's reports (no per-event allocation beyond the agent's own)."""

    def __init__(self) -> None:
        self.registered = 0
        self.failed = 0
        self.expired = 0
        self.unregistered = 0
        self.failures: dict[str, int] = {}
        self.last_registered_at = 0.0
        self.marks: dict[int, float] = {}      # registered count -> when it was reached
        self._mark_at: frozenset[int] = frozenset()

    def mark_at(self, *counts: int) -> None:
        """Also note when the registered count reaches each of ``counts`` (a round's tail)."""
        self._mark_at = frozenset(counts)

    def __call__(self, event: AgentEvent) -> None:
        r = event.report
        if isinstance(r, Registered):
            self.registered += 1
            self.last_registered_at = time.perf_counter()
            if self.registered in self._mark_at:
                self.marks[self.registered] = self.last_registered_at
        elif isinstance(r, RegistrationFailed):
            self.failed += 1
            key = f"{r.kind}:{r.status}"
            self.failures[key] = self.failures.get(key, 0) + 1
        elif isinstance(r, Expired):
            self.expired += 1
        elif isinstance(r, Unregistered):
            self.unregistered += 1


async def wait_until(predicate, timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def _policy(budget: float) -> RegistrationPolicy:
    # The monitor's policy (sipphones.monitor.service.MonitorOptions.policy) without jitter for
    # the throughput run; the hold run passes jitter like the monitor does.
    return RegistrationPolicy(timers=TransactionTimers(budget=budget))


class _NoCollector:
    """``--gc default``: CPython's own policy."""

    def start(self) -> None: ...
    def settle(self) -> None: ...
    def tick(self) -> None: ...
    def release(self) -> None: ...
    def stop(self) -> None: ...


def collector_for(policy: str) -> FleetCollector | _NoCollector:
    """``fleet``: what `sipphones monitor` runs (sipphones.sipio.gc_policy); ``default``: CPython's."""
    return FleetCollector() if policy == "fleet" else _NoCollector()


def add_gc_options(ap: argparse.ArgumentParser) -> None:
    """The collector options of this worker and of bench/sip_micro.py."""
    ap.add_argument("--no-gc", action="store_true", help="disable the cyclic GC (profiling: to see its share)")
    ap.add_argument("--gc", choices=("fleet", "default"), default="fleet",
                    help="fleet: the collector policy `sipphones monitor` runs with (sipphones.sipio.gc_policy); "
                         "default: CPython's")


collector: FleetCollector | _NoCollector = _NoCollector()


async def throughput(args: argparse.Namespace) -> dict:
    collector.start()
    stack = SipStack.create()
    stack.transports.coalesce_udp = not args.no_coalesce_udp   # bench/ab_optimisations.py coalesce
    rounds = []
    gcc = GcClock()
    try:
        phones = make_phones(args.server, args.domain, args.prefix, args.first, args.count, args.expire_minutes)
        if args.shards > 1:  # as `sipphones monitor --workers N` splits a fleet
            phones = [p for p in phones if shard_of(p.id, args.shards) == args.shard]
        configs = [(p.id, registration_config(p)) for p in phones]
        count = len(configs)
        if args.wait_go:  # several shard workers start their measured windows together
            print(json.dumps({"loaded": True, "phones": count}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for r in range(args.rounds):
            counter = Counter()
            tail_marks = {q: max(1, int(count * q)) for q in (0.5, 0.9, 0.99)}
            counter.mark_at(*tail_marks.values())
            agent = RegistrationAgent(stack, policy=_policy(args.budget), on_event=counter, start_rate=0,
                                      max_in_flight=args.concurrency)
            gc.collect()
            g0, u0 = gcc.snapshot(), cpu_split()
            t0, c0 = time.perf_counter(), cpu_seconds()
            m0 = time.monotonic()
            for pid, cfg in configs:
                agent.add(cfg, pid)
            collector.settle()  # as FleetMonitor does after loading phones (counted in the window)
            done = await wait_until(lambda: counter.registered + counter.failed >= count, args.timeout)
            collector.tick()    # the collection the burst deferred: charged to the burst
            t1, c1 = time.perf_counter(), cpu_seconds()
            gcs, u1 = gcc.since(g0), cpu_split()
            wall = (counter.last_registered_at or t1) - t0
            registered = counter.registered
            t2, c2 = time.perf_counter(), cpu_seconds()
            await agent.stop(timeout=args.timeout)
            t3, c3 = time.perf_counter(), cpu_seconds()
            collector.release()  # as FleetMonitor does when phones leave
            rounds.append({
                "round": r + 1, "count": count, "shard": args.shard, "shards": args.shards,
                "start_monotonic": m0, "last_registered_monotonic": m0 + ((counter.last_registered_at or t1) - t0), "registered": registered, "failed": counter.failed,
                "failures": counter.failures, "complete": done and registered == count,
                "seconds": round(wall, 4), "rate": round(registered / wall, 1) if wall > 0 else 0.0,
                # when 50 / 90 / 99 % of the phones were registered, seconds into the window: a
                # long last 1 % is a tail of retransmissions (a datagram lost), not throughput
                "seconds_to": {f"{int(q * 100)}%": round(counter.marks[n] - t0, 4)
                               for q, n in tail_marks.items() if n in counter.marks},
                "cpu_seconds": round(c1 - c0, 4),
                "cpu_us_per_registration": round(1e6 * (c1 - c0) / registered, 1) if registered else None,
                "cpu_share": round((c1 - c0) / (t1 - t0), 3) if t1 > t0 else None,
                "user_seconds": round(u1[0] - u0[0], 4), "system_seconds": round(u1[1] - u0[1], 4), "gc": gcs,
                "unregistered": counter.unregistered, "stop_seconds": round(t3 - t2, 4),
                "stop_rate": round(counter.unregistered / (t3 - t2), 1) if t3 > t2 else 0.0,
                "stop_cpu_us_per_unregister": (round(1e6 * (c3 - c2) / counter.unregistered, 1)
                                               if counter.unregistered else None),
            })
    finally:
        await stack.close()
    return {"job": "throughput", "rounds": rounds, "rss_mb": round(rss_mb(), 1)}


async def hold(args: argparse.Namespace) -> dict:
    collector.start()
    stack = SipStack.create()
    counter = Counter()
    policy = RegistrationPolicy(timers=TransactionTimers(budget=args.budget), jitter=args.jitter)
    agent = RegistrationAgent(stack, policy=policy, on_event=counter, start_rate=args.start_rate,
                              max_in_flight=args.concurrency)
    try:
        phones = make_phones(args.server, args.domain, args.prefix, args.first, args.count, args.expire_minutes)
        t0 = time.perf_counter()
        for p in phones:
            agent.add(p)
        del phones
        collector.settle()
        ok = await wait_until(lambda: counter.registered + counter.failed >= args.count, args.timeout, 0.05)
        t1 = time.perf_counter()
        first = {"registered": counter.registered, "failed": counter.failed, "seconds": round(t1 - t0, 2),
                 "complete": ok and counter.registered == args.count}
        print(json.dumps({"ready": True, **first}), flush=True)
        base = counter.registered, counter.failed, counter.expired
        c0 = cpu_seconds()
        await asyncio.sleep(args.hold)
        c1 = cpu_seconds()
        held = sum(1 for pid in agent.phone_ids() if agent.status(pid).registered)
        refreshes = counter.registered - base[0]
        result = {
            "job": "hold", "count": args.count, "first": first, "hold_seconds": args.hold,
            "refreshes": refreshes, "refresh_rate": round(refreshes / args.hold, 1),
            "failed_during_hold": counter.failed - base[1], "expired_during_hold": counter.expired - base[2],
            "failures": counter.failures, "registered_at_end": held,
            "cpu_share_self": round((c1 - c0) / args.hold, 4), "rss_mb_self": round(rss_mb(), 1),
        }
        t2 = time.perf_counter()
        await agent.stop(timeout=args.timeout)
        result["stop_seconds"] = round(time.perf_counter() - t2, 2)
        result["unregistered"] = counter.unregistered
        return result
    finally:
        await agent.stop(timeout=1.0)
        await stack.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job", choices=("throughput", "hold"))
    ap.add_argument("--server", required=True, help="registrar host:port (UDP)")
    ap.add_argument("--domain", default="sip.test")
    ap.add_argument("--prefix", default="b", help="user names are PREFIX000000...")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--shard", type=int, default=0, help="keep only the phones of shard K of --shards (throughput)")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--wait-go", action="store_true",
                    help="print a 'loaded' line, then wait for a line on stdin before the measured window")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--expire-minutes", type=int, default=60)
    ap.add_argument("--budget", type=float, default=5.0, help="per-server answer budget (s)")
    ap.add_argument("--timeout", type=float, default=120.0, help="bound of each wait (s)")
    ap.add_argument("--hold", type=float, default=90.0)
    ap.add_argument("--jitter", type=float, default=0.1)
    ap.add_argument("--start-rate", type=float, default=1000.0)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--profile", help="write a cProfile of the job to this file")
    ap.add_argument("--no-coalesce-udp", action="store_true",
                    help="send every UDP datagram at once (TransportManager.coalesce_udp off: A/B only)")
    add_gc_options(ap)
    args = ap.parse_args(argv)
    global collector
    collector = collector_for(args.gc)
    job = throughput if args.job == "throughput" else hold
    if args.no_gc:
        gc.disable()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    if args.profile:
        import cProfile
        prof = cProfile.Profile(time.process_time)  # CPU time: preemption on a busy machine is not our cost
        prof.enable()
        result = asyncio.run(job(args))
        prof.disable()
        prof.dump_stats(args.profile)
    else:
        result = asyncio.run(job(args))
    result["loop"] = args.loop
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
