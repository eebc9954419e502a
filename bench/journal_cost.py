"""What the emulator's request journal costs: create throughput with the journal on and off.

    .venv/bin/python bench/journal_cost.py            # 3 interleaved rounds of 10 s per side (~3 minutes)
    .venv/bin/python bench/journal_cost.py --quick    # 1 round of 2 s per side (~40 s)

Issue 14's target: the journal costs at most 10 % of create throughput when on. Three
``sipphones serve`` processes (one worker each: emulator mode runs one), each on its own SQLite
file seeded by ``bench/seed.py`` (an unlimited account and its users), take the create workload of
``bench/run.py`` (``POST /v2/sip_phones``, the legacy body, every request a distinct phone) from
wrk ``-t2 -c64``:

* ``journal-on``: ``--emulator``, the journal on (its default: 1,000 entries of 32 KiB at most);
* ``journal-off``: ``--emulator`` with ``SIPPHONES_JOURNAL=0`` (the wire still finds each
  request's account and looks for a fault rule: the emulator without its journal);
* ``plain``: ``serve`` without ``--emulator`` (no wire at all), for reference.

Rounds interleave the sides (the order rotates each round). Printed: each side's median req/s and
server CPU per request with [min-max], and the ratio journal-on / journal-off, per round and
median, with the verdict against the target (cost <= 10 %). Also the in-process cost of one
``Journal.record`` of a create exchange (µs), beside the server CPU per request it is part of.
Exit status 1 when an answer was not 201 or the target was missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import coldstart, loadgen, seed  # noqa: E402
from bench.procs import Server, free_port, launch  # noqa: E402
from bench.workload import CREATE_BODY, Workload  # noqa: E402

TARGET_COST = 0.10
SIDES = ("journal-on", "journal-off", "plain")
OPERATOR = "bench-operator-token-0123456789"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start_side(side: str, root: Path, users: int) -> tuple[Server, Workload]:
    data_dir = root / side
    url = f"sqlite:///{data_dir / 'sipphones.db'}"
    data_dir.mkdir(parents=True)
    seed.prepare_schema(url)
    creds = seed.provision_account(url, data_dir, f"bench-{side}")
    seed.seed_users(url, creds.account_id, "c", users)
    port = free_port()
    env = coldstart.serve_env(data_dir, url)
    argv = coldstart.serve_argv(port, 1)
    if side != "plain":
        argv.append("--emulator")
        env.update({"SIPPHONES_ADMIN_TOKEN": OPERATOR, "SIPPHONES_JOURNAL": "1" if side == "journal-on" else "0"})
    server = launch(f"serve-{side}", argv, log_dir=data_dir, env=env, port=port)
    server.wait_ready("/healthz", timeout=120)
    import httpx

    r = httpx.post(f"{server.base_url}/oauth/token", auth=(creds.client_id, creds.client_secret),
                   data={"grant_type": "account_credentials", "account_id": creds.account_id}, timeout=30)
    r.raise_for_status()
    return server, Workload("create", "POST", "/v2/sip_phones", r.json()["access_token"], prefix="c", expect=201)


def journal_entries(server: Server) -> int:
    import httpx

    r = httpx.get(f"{server.base_url}/_sipphones/v1/journal", params={"limit": 1},
                  headers={"authorization": f"Bearer {OPERATOR}"}, timeout=30)
    r.raise_for_status()
    return r.json()["total"]


def record_cost_us(samples: int = 20_000) -> float:
    """CPU microseconds one ``Journal.record`` of a create exchange takes in this process (median of 5)."""
    import orjson

    from sipphones.emulator.journal import Exchange, Journal

    body = orjson.dumps({**CREATE_BODY, "user_email": "c1@bench.example"})
    answer = orjson.dumps({"id": "x" * 22, **CREATE_BODY, "user_email": "c1@bench.example"})
    head = [(b"host", b"127.0.0.1:8000"), (b"authorization", b"Bearer " + b"e" * 300),
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    answer_head = [(b"x-zm-trackingid", b"a" * 24), (b"content-type", b"application/json"),
                   (b"content-length", str(len(answer)).encode())]
    journal = Journal()
    runs = []
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(samples):
            journal.record(Exchange("POST", "/v2/sip_phones", "", "acc", head, body, 201, answer_head, answer,
                                    0.0, 0.001))
        runs.append((time.process_time() - t0) / samples * 1e6)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round of 2 s per side")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds per measured run")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--skip-wrk", action="store_true", help="only the in-process figure (bench/journal_inprocess.py)")
    p.add_argument("--smoke", action="store_true",
                   help="the tool's own test (bench/tests): 1 s per side, no verdict on the target")
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    rounds = args.rounds or (1 if quick else 3)
    duration = args.duration or (1.0 if args.smoke else 2.0 if quick else 10.0)
    warmup = 0.5 if args.smoke else 1.0 if quick else 2.0
    # Phones a side may create: at most ~4k/s on this machine's one worker; ten per seeded user.
    users = int(rounds * (duration + warmup) * 4_000 / 10) + 500

    from bench import journal_inprocess

    log("in-process: CPU per create, journal on and off")
    inproc_ratio = journal_inprocess.run(rounds=2 if quick else 6, batch=100 if args.smoke else 400)
    if args.skip_wrk:
        return 0 if args.smoke or 1 - 1 / inproc_ratio <= TARGET_COST else 1
    root = Path(tempfile.mkdtemp(prefix="sipphones-bench-journal-"))
    servers: dict[str, Server] = {}
    workloads: dict[str, Workload] = {}
    results: dict[str, list[loadgen.Measurement]] = {side: [] for side in SIDES}
    failed = False
    try:
        for side in SIDES:
            log(f"{side}: seeding {users:,} users and starting serve")
            servers[side], workloads[side] = start_side(side, root, users)
        for r in range(rounds):
            order = SIDES[r % len(SIDES):] + SIDES[:r % len(SIDES)]
            for side in order:
                w, srv = workloads[side], servers[side]
                loadgen.saturate(w, srv, target=side, duration=warmup, connections=args.connections,
                                 script_dir=root / "scripts")
                m = loadgen.saturate(w, srv, target=side, duration=duration, connections=args.connections,
                                     script_dir=root / "scripts")
                bad = {k: v for k, v in m.statuses.items() if k != "201"}
                if bad or m.errors and any(m.errors.values()):
                    log(f"{side}: answers other than 201 {bad} or socket errors {m.errors}")
                    failed = True
                results[side].append(m)
                log(f"round {r + 1} {side}: {m.req_s:,.0f} req/s, {m.cpu_us_per_req:,.0f} µs CPU/request")
        entries = journal_entries(servers["journal-on"])
        off_entries = journal_entries(servers["journal-off"])
    finally:
        for srv in servers.values():
            srv.stop()

    record_us = record_cost_us(2_000 if args.smoke else 20_000)
    print(f"\njournal cost on create throughput (wrk -t2 -c{args.connections}, {rounds} round(s) of {duration:g} s, "
          f"one worker per side, SQLite)")
    for side in SIDES:
        rps = [m.req_s for m in results[side]]
        cpu = [m.cpu_us_per_req for m in results[side]]
        print(f"  {side:12s} {statistics.median(rps):8,.0f} req/s [{min(rps):,.0f}-{max(rps):,.0f}]   "
              f"{statistics.median(cpu):6,.0f} µs server CPU/request [{min(cpu):,.0f}-{max(cpu):,.0f}]")
    paired = [a.req_s / b.req_s for a, b in zip(results["journal-on"], results["journal-off"])]
    cpu_paired = [a.cpu_us_per_req / b.cpu_us_per_req for a, b in zip(results["journal-on"], results["journal-off"])]
    wire = [a.req_s / b.req_s for a, b in zip(results["journal-off"], results["plain"])]
    ratio = statistics.median(paired)
    print(f"  journal-on / journal-off throughput: {ratio:.3f} (rounds: {', '.join(f'{x:.3f}' for x in paired)}); "
          f"cost {(1 - ratio) * 100:+.1f} %  (target: at most {TARGET_COST * 100:.0f} %)")
    print(f"  journal-on / journal-off server CPU per request: {statistics.median(cpu_paired):.3f}")
    print(f"  journal-off / plain throughput (the wire without journal): {statistics.median(wire):.3f}")
    print(f"  one Journal.record of a create, in-process: {record_us:.1f} µs "
          f"({record_us / statistics.median(m.cpu_us_per_req for m in results['journal-on']) * 100:.1f} % of "
          f"journal-on's CPU per request)")
    print(f"  entries held at the end: journal-on {entries:,} (bound 1,000), journal-off {off_entries:,}")
    if entries == 0 or off_entries != 0:
        print("  CHECK FAILED: the journal-on server must hold entries and the journal-off one none")
        failed = True
    if 1 - ratio > TARGET_COST and not args.smoke:
        print("  TARGET MISSED")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
