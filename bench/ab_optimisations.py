"""With and without: does an optimisation still earn its place (>= 5 % on the figure it targets)?

    .venv/bin/python bench/ab_optimisations.py gc --rounds 15        # cold start of serve, GC pause on/off
    .venv/bin/python bench/ab_optimisations.py coalesce --rounds 6   # UDP send coalescing on/off (kamailio)
    .venv/bin/python bench/ab_optimisations.py one-send --rounds 7   # the one-send HTTP protocol vs uvicorn's

Every case measures A (the optimisation on, as shipped) and B (off) in the same run, interleaved
(the order alternates from round to round, so neither side always runs first), and prints each
side's median with [min-max] and the gain of A over B in per cent of B. On a shared machine a gain
whose size is within the spread of either side is noise: the report says so rather than a verdict.

(The buffered nonce source was measured here too, and removed for it: its case, ``entropy``, is in
this file at commit a484015.)

- ``gc``: ``sipphones serve`` launch to its first ``/healthz`` 200 on a fresh SQLite file
  (``bench/coldstart.py``), 1 and 2 workers, and the CPU time its process tree spent until then
  (steadier than wall time when other jobs compete for the cores). B replaces ``sipphones.gc_pause.pause`` with a no-op
  in every process of the tree (a ``sitecustomize`` on ``PYTHONPATH``; A gets one that only
  imports the module, so both pay the same import).
- ``one-send``: the bare ASGI endpoint (``bench/bare_asgi.py``, 2 workers) under uvicorn's httptools
  protocol and under ``sipphones.api.http_protocol`` (``bench/run.py``'s two references), wrk
  ``-t2 -c64``: req/s and server CPU per request.
- ``coalesce``: the SIP engine against kamailio (``bench/sip_engine.py``'s registrar and worker,
  one worker process): registrations/s and CPU per registration, ``coalesce_udp`` on and off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def summary(name: str, a: list[float], b: list[float], higher_is_better: bool) -> str:
    ma, mb = statistics.median(a), statistics.median(b)
    gain = (ma - mb) / mb * 100 if higher_is_better else (mb - ma) / mb * 100
    spread = max(max(a) - min(a), max(b) - min(b)) / mb * 100
    # Each round's A and B ran next to each other: their ratio is steadier than either side.
    ratios = sorted(x / y for x, y in zip(a, b))
    q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
    better = sum((r > 1) if higher_is_better else (r < 1) for r in ratios)
    verdict = ("inside the noise" if abs(gain) < spread / 2 and (q1 <= 1 <= q3) else
               ("earns its place" if gain >= 5 else "below 5 %"))
    return (f"{name}: on {ma:.1f} [{min(a):.1f}-{max(a):.1f}]  off {mb:.1f} [{min(b):.1f}-{max(b):.1f}]  "
            f"gain {gain:+.1f} % (spread {spread:.0f} % of off); paired on/off median "
            f"{statistics.median(ratios):.3f} [quartiles {q1:.3f}-{q3:.3f}], on better in {better}/{len(ratios)}: "
            f"{verdict}")


# --- GC pause ------------------------------------------------------------------------------------

def _site_dir(root: Path, name: str, body: str) -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "sitecustomize.py").write_text(body)
    return d


def ab_gc(rounds: int) -> None:
    from bench.coldstart import serve_argv, serve_env
    from bench.procs import cpu_seconds_between, free_port, launch

    root = Path(tempfile.mkdtemp(prefix="sipphones-ab-gc-"))
    on = _site_dir(root, "on", "import sipphones.gc_pause\n")
    off = _site_dir(root, "off", "import sipphones.gc_pause\nsipphones.gc_pause.pause = lambda: None\n")
    results: dict[tuple[int, str], list[float]] = {}
    cpu: dict[tuple[int, str], list[float]] = {}
    for r in range(rounds):
        for workers in (1, 2):
            sides = [("on", on), ("off", off)] if r % 2 == 0 else [("off", off), ("on", on)]
            for side, site in sides:
                data_dir = root / f"w{workers}-{side}-{r}"
                port = free_port()
                env = dict(serve_env(data_dir), PYTHONPATH=str(site))
                srv = launch(f"ab-{side}", serve_argv(port, workers), log_dir=data_dir, env=env, port=port)
                try:
                    t = srv.wait_ready("/healthz", timeout=30, poll=0.005)
                    c = cpu_seconds_between({}, srv.cpu())
                finally:
                    srv.stop()
                results.setdefault((workers, side), []).append(t * 1000)
                cpu.setdefault((workers, side), []).append(c * 1000)
                print(f"  round {r + 1} workers {workers} gc pause {side}: {t * 1000:.0f} ms, "
                      f"CPU {c * 1000:.0f} ms", file=sys.stderr)
    for workers in (1, 2):
        print(summary(f"cold start ms, {workers} worker(s) (lower is better)", results[(workers, "on")],
                      results[(workers, "off")], higher_is_better=False))
        print(summary(f"CPU ms of serve's process tree to ready, {workers} worker(s) (lower is better)",
                      cpu[(workers, "on")], cpu[(workers, "off")], higher_is_better=False))


# --- one send per response ----------------------------------------------------------------------

def ab_one_send(rounds: int, duration: float) -> None:
    from bench.loadgen import saturate
    from bench.run import ONE_SEND, Cleanup, start_bare
    from bench.workload import Workload

    work = Path(tempfile.mkdtemp(prefix="sipphones-ab-one-send-"))
    cleanup = Cleanup()
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpus: dict[str, list[float]] = {"on": [], "off": []}
    try:
        servers = {"on": start_bare(work, cleanup, ONE_SEND, "bare-one-send"),
                   "off": start_bare(work, cleanup, "httptools", "bare-asgi")}
        w = Workload("bare", "GET", "/", count_statuses=False)
        for side in ("on", "off"):   # warm-up, discarded
            saturate(w, servers[side], target=side, duration=2, script_dir=work / "wrk")
        for r in range(rounds):
            for side in (("on", "off") if r % 2 == 0 else ("off", "on")):
                m = saturate(w, servers[side], target=side, duration=duration, script_dir=work / "wrk")
                rates[side].append(m.req_s)
                cpus[side].append(m.cpu_us_per_req)
                print(f"  round {r + 1} one-send {side}: {m.req_s:.0f} req/s {m.cpu_us_per_req:.1f} us/req "
                      f"(other cores {m.extra['other_cores']:.2f})", file=sys.stderr)
    finally:
        cleanup.run()
    print(summary("bare endpoint req/s, one-send vs stock httptools (higher is better)", rates["on"], rates["off"],
                  higher_is_better=True))
    print(summary("bare endpoint server CPU us/req (lower is better)", cpus["on"], cpus["off"], higher_is_better=False))


# --- UDP coalescing ------------------------------------------------------------------------------

def ab_coalesce(rounds: int, count: int) -> None:
    from bench import sip_engine

    work = Path(tempfile.mkdtemp(prefix="sipphones-ab-coalesce-"))
    kam = sip_engine.start_registrar(work, 0, count)
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpus: dict[str, list[float]] = {"on": [], "off": []}
    kcpus: dict[str, list[float]] = {"on": [], "off": []}
    real = sip_engine.run_worker
    try:
        for r in range(rounds):
            for side in (("on", "off") if r % 2 == 0 else ("off", "on")):
                def run_worker(job, args, bound, on_line=None, source=None, side=side):
                    extra = [] if side == "on" else ["--no-coalesce-udp"]
                    return real(job, [*args, *extra], bound, on_line, source)
                sip_engine.run_worker = run_worker
                res = sip_engine.engine_round(kam, count, 200, r + 1, "asyncio", label=f"coal-{side}")
                rates[side].append(res["rate"])
                cpus[side].append(res["cpu_us_per_registration"])
                kcpus[side].append(res["kamailio_cpu_us_per_registration"])
    finally:
        sip_engine.run_worker = real
        kam.stop()
    print(summary("engine registrations/s (higher is better)", rates["on"], rates["off"], higher_is_better=True))
    print(summary("engine CPU us per registration (lower is better)", cpus["on"], cpus["off"], higher_is_better=False))
    print(summary("kamailio CPU us per registration+unregistration (lower is better)", kcpus["on"], kcpus["off"],
                  higher_is_better=False))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=("gc", "coalesce", "one-send"))
    ap.add_argument("--duration", type=float, default=5.0, help="one-send: seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--phones", type=int, default=10000, help="coalesce: phones per round")
    args = ap.parse_args()
    if args.case == "gc":
        ab_gc(args.rounds)
    elif args.case == "one-send":
        ab_one_send(args.rounds, args.duration)
    else:
        ab_coalesce(args.rounds, args.phones)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
