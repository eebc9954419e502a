"""kamailio's instructions per registration for SIPp's and the engine's traffic (callgrind; an investigation tool).

Why: in ``bench/sip_engine.py`` kamailio spends more CPU per engine registration (71-80 us) than
per SIPp registration (~53 us). Instruction counts are immune to the machine's load, so this tool
runs the benchmark's kamailio (``sip_engine.start_registrar``: same config, same SQLite users)
under ``valgrind --tool=callgrind --trace-children=yes`` and drives it slowly (no retransmission)
with one kind of traffic per phase, zeroing and dumping callgrind's counters of every kamailio
process around each phase:

``sipp``           SIPp's ``uac_register.xml`` (the benchmark's "sipp-refresh" scenario), new bindings (fresh users)
``sipp-refresh``   the same users again from the same port: refreshes, as in bench/sip_engine.py's "sipp-refresh" steps
``sipp-rport``     the scenario with ``;rport`` in the Via (as the engine and most phones send), new
                   bindings: what bench/sip_engine.py's "sipp-like-engine" steps send
``sipp-rport-refresh``  the same again: refreshes
``engine``         ``RegistrationAgent`` (the benchmark's path), new bindings; its un-REGISTERs
                   come after the dump and are not counted

Printed: kamailio instructions (Ir) per registration by phase, the share spent in its memory
allocator, and (``--top``) the functions that differ most from the first phase. ``--allocator``
passes ``-x`` to kamailio (``qm`` is its default; ``tlsf``, ``fm``) to show how much of the
difference is the allocator's. Everything on 127.0.0.1; processes stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sip_engine import DOMAIN, PREFIX, SIPP_PREFIX, UAC_REGISTER, UAC_REGISTER_RPORT, start_registrar  # noqa: E402
from bench.sip_worker import password, user_name  # noqa: E402

PHASES = ("sipp", "sipp-refresh", "sipp-rport", "sipp-rport-refresh", "engine")
ALLOCATOR = re.compile(r"^(qm_|fm_|tlsf_|_?shm_|pkg_)|malloc|free|realloc")


def tree(root: int) -> list[int]:
    """``root`` and its descendants (kamailio forks its workers; valgrind follows them)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        todo += [int(k) for k in kids]
    return out


def control(pids: list[int], *args: str) -> None:
    for pid in pids:
        subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, timeout=60)


def parse(path: Path, excl: collections.Counter, calls: collections.Counter) -> None:
    """Exclusive Ir per function of one callgrind dump (name compression; call costs skipped),
    and the number of calls of each function."""
    names: dict[str, str] = {}
    fn = None
    after_calls = False
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(3) is not None:
                names[m.group(2)] = m.group(3)
            if m.group(1) == "fn":
                fn = names.get(m.group(2), m.group(2))
            else:
                callee = names.get(m.group(2), m.group(2))
            continue
        if line.startswith("calls="):
            calls[callee] += int(line.split("=", 1)[1].split()[0])
            after_calls = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if len(parts) >= 2:
                if not after_calls:
                    excl[fn] += int(parts[1])
                after_calls = False


def dumped(cg_dir: Path, label: str) -> list[Path]:
    return [p for p in cg_dir.glob("callgrind.out.*.*") if f"Trigger: dump {label}\n" in p.read_text(errors="replace")[:2000]]


def users_csv(path: Path, first: int, count: int) -> Path:
    lines = ["SEQUENTIAL"]
    for i in range(first, first + count):
        u, p = user_name(SIPP_PREFIX, i), password(SIPP_PREFIX, i)
        lines.append(f"{u};{p};{DOMAIN};[authentication username={u} password={p}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_sipp(workdir: Path, port: int, scenario: Path, csv: Path, local_port: int, count: int, rate: int) -> dict:
    stat = workdir / "sipp-stat.csv"
    stat.unlink(missing_ok=True)
    argv = ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-inf", str(csv), "-i", "127.0.0.1",
            "-p", str(local_port), "-t", "u1", "-r", str(rate), "-m", str(count), "-buff_size", "4194304",
            "-auth_uri", DOMAIN, "-nostdin", "-nd", "-timeout", f"{int(count / rate * 3 + 60)}s",
            "-trace_stat", "-stf", str(stat), "-fd", "1"]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir,
                   timeout=count / rate * 3 + 90)
    rows = [r.split(";") for r in stat.read_text().splitlines() if r.strip()]
    row = dict(zip(rows[0], rows[-1]))
    return {"registered": int(row.get("SuccessfulCall(C)", 0)), "retransmissions": int(row.get("Retransmissions(C)", 0))}


async def engine_phase(port: int, first: int, count: int, concurrency: int, dump) -> dict:
    from bench.sip_worker import Counter, _policy, make_phones, wait_until
    from sipphones.registration_config import registration_config
    from sipphones.sipio.agent import RegistrationAgent
    from sipphones.sipio.stack import SipStack

    stack = SipStack.create()
    counter = Counter()
    agent = RegistrationAgent(stack, policy=_policy(30.0), on_event=counter, start_rate=0,
                              max_in_flight=concurrency)
    try:
        for p in make_phones(f"127.0.0.1:{port}", DOMAIN, PREFIX, first, count, 60):
            agent.add(registration_config(p), p.id)
        await wait_until(lambda: counter.registered + counter.failed >= count, count * 0.5 + 120, 0.05)
        result = {"registered": counter.registered, "failed": counter.failed}
        dump()   # before the un-REGISTERs
        await agent.stop(timeout=120)
        return result
    finally:
        await stack.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="registrations per phase")
    ap.add_argument("--rate", type=int, default=20, help="SIPp calls/s (kamailio runs ~50x slower under callgrind)")
    ap.add_argument("--concurrency", type=int, default=4, help="engine: first REGISTERs in flight")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated, of {', '.join(PHASES)}")
    ap.add_argument("--allocator", choices=("qm", "fm", "tlsf"), help="kamailio -x (default: kamailio's own)")
    ap.add_argument("--top", type=int, default=12, help="functions listed per phase")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (callgrind dumps)")
    args = ap.parse_args(argv)
    phases = args.phases.split(",")
    for tool in ("kamailio", "sipp", "valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="sipcost-"))
    cg_dir = workdir / "callgrind"
    cg_dir.mkdir()
    wrapper = ("valgrind", "--tool=callgrind", "--trace-children=yes",
               f"--callgrind-out-file={cg_dir}/callgrind.out.%p")
    sipp_phases = [p for p in phases if p.startswith("sipp") and not p.endswith("refresh")]
    kam = start_registrar(workdir, args.count * max(1, len(sipp_phases)), args.count, wrapper=wrapper,
                          kamailio_args=("-x", args.allocator) if args.allocator else (), start_timeout=180.0)
    print(f"kamailio (callgrind{', -x ' + args.allocator if args.allocator else ''}) pid {kam.process.pid}, "
          f"work dir {workdir}", flush=True)
    plain = workdir / "uac_register.xml"
    plain.write_text(UAC_REGISTER)
    rport = workdir / "uac_register_rport.xml"
    rport.write_text(UAC_REGISTER_RPORT)
    from tests.peers.procs import free_port
    ports = {"sipp": free_port("127.0.0.1", tcp=False)}
    ports["sipp-rport"] = free_port("127.0.0.1", tcp=False, avoid={ports["sipp"]})
    firsts: dict[str, int] = {}
    results: dict[str, tuple[dict, collections.Counter]] = {}
    try:
        for n, phase in enumerate(phases):
            label = f"phase{n}-{phase}"
            pids = tree(kam.process.pid)
            control(pids, "-z")
            dump = lambda: control(tree(kam.process.pid), "-d", label)  # noqa: E731
            if phase == "engine":
                outcome = asyncio.run(engine_phase(kam.udp_port, 0, args.count, args.concurrency, dump))
            else:
                base = phase.removesuffix("-refresh")
                if phase.endswith("-refresh"):
                    first = firsts[base]
                else:
                    first = firsts[base] = len(firsts) * args.count
                csv = users_csv(workdir / f"{label}.csv", first, args.count)
                outcome = run_sipp(workdir, kam.udp_port, rport if "rport" in phase else plain, csv,
                                   ports[base], args.count, args.rate)
                dump()
            time.sleep(1.0)
            excl: collections.Counter = collections.Counter()
            calls: collections.Counter = collections.Counter()
            for path in dumped(cg_dir, label):
                parse(path, excl, calls)
            # Per two requests received (receive_msg calls): a registration is two REGISTERs, and
            # a retransmitted one (kamailio under callgrind on a busy machine is slow) costs about
            # what the first did, so this stays per registration when some were retransmitted.
            requests = calls["receive_msg"]
            reg = max(1, requests / 2)
            results[phase] = (dict(outcome, requests=requests), excl)
            total = sum(excl.values())
            alloc = sum(c for f, c in excl.items() if f and ALLOCATOR.search(f))
            print(f"{phase:20} {outcome}  requests {requests}  kamailio {total / reg:10,.0f} Ir per registration "
                  f"(2 requests), allocator {alloc / reg:10,.0f} ({100 * alloc / max(1, total):.0f} %)", flush=True)
        if args.top and len(results) > 1:
            ref_name = phases[0]
            ref_out, ref = results[ref_name]
            for phase in phases[1:]:
                out, excl = results[phase]
                diff = collections.Counter()
                for f in set(ref) | set(excl):
                    diff[f] = 2 * excl[f] / max(1, out["requests"]) - 2 * ref[f] / max(1, ref_out["requests"])
                print(f"\n{phase} minus {ref_name}, Ir per registration:")
                for f, d in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:args.top]:
                    print(f"  {d:+10,.0f}  {f}")
    finally:
        kam.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
