"""With and without: does an optimisation still earn its place (>= 5 % on the figure it targets)?

    .venv/bin/python bench/ab_optimisations.py gc --rounds 15        # cold start of serve, GC pause on/off
    .venv/bin/python bench/ab_optimisations.py coalesce --rounds 6   # UDP send coalescing on/off (kamailio)
    .venv/bin/python bench/ab_optimisations.py one-send --rounds 7   # the one-send HTTP protocol vs uvicorn's
    .venv/bin/python bench/ab_optimisations.py pg --rounds 5         # PostgreSQL: grouped creates, held pool
    .venv/bin/python bench/ab_optimisations.py users --old-src DIR   # POST /v2/users: this tree vs an older one

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
- ``pg``: two ``serve --workers 2`` on one seeded PostgreSQL database, wrk ``-t2 -c64``: phone
  creates with ``SIPPHONES_DATABASE_GROUP_CREATES`` as shipped and at 1 (each create alone); a
  status-view page (the SQLAlchemy path) with the held pool and with the old one (2 + 6 overflow,
  closed when they come back: a ``sitecustomize`` on B's ``PYTHONPATH``). Req/s, server and
  PostgreSQL CPU per request, and new PostgreSQL backends per run (``pg_stat_database.sessions``).
- ``users``: ``POST /v2/users`` on this tree against an older one (``--old-src``: its ``src``
  directory, on B's ``PYTHONPATH``), SQLite and PostgreSQL: the users path moved onto the raw
  hot path (issue 12, point 5).
- ``coalesce``: the SIP engine against kamailio (``bench/sip_engine.py``'s registrar and worker,
  one worker process): registrations/s and CPU per registration, ``coalesce_udp`` on and off.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
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


# --- PostgreSQL: grouped phone creates, held SQLAlchemy pool -------------------------------------

# B's SQLAlchemy pool as it was: 2 held, up to 6 more opened for a request and closed after it.
_OLD_POOL = """
import sipphones.storage.database as db, sipphones.storage.store as store
from sqlalchemy.ext.asyncio import create_async_engine
_engine = db.async_engine
def async_engine(url, pragmas=db.SqlitePragmas(), pools=db.PostgresTuning()):
    if db.is_sqlite(url):
        return _engine(url, pragmas, pools)
    return create_async_engine(db._url(url, asynchronous=True), pool_size=2, max_overflow=6, pool_pre_ping=True,
                               hide_parameters=True)
store.async_engine = async_engine
"""


def ab_pg(rounds: int, duration: float, admin_url: str) -> None:
    """Two ``serve --workers 2`` on one seeded PostgreSQL database, A as shipped, B without the
    optimisation; wrk ``-t2 -c64`` on each in turn. ``group``: phone creates (``POST
    /v2/sip_phones``), B with ``SIPPHONES_DATABASE_GROUP_CREATES=1``. ``pool``: a page of the
    status view (``GET /_sipphones/v1/sip_phones/status``, the SQLAlchemy path), B with the old
    pool (2 + 6 overflow); also the PostgreSQL sessions (backends) started per run."""
    import psycopg
    from sqlalchemy.engine import make_url

    from bench import seed
    from bench.coldstart import serve_argv, serve_env
    from bench.loadgen import saturate
    from bench.procs import free_port, launch
    from bench.run import Cleanup, access_token, create_pg_database, pg_backends
    from bench.workload import Workload

    def on_term(signum, frame):  # SIGTERM: stop the servers and drop the database, as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="sipphones-ab-pg-"))
    cleanup = Cleanup()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        url = create_pg_database(admin_url, cleanup)
        seed.prepare_schema(url)
        data_dir = work / "data"
        c_create = seed.provision_account(url, data_dir, "ab-create")
        c_list = seed.provision_account(url, data_dir, "ab-list")
        seed.seed_users(url, c_create.account_id, "c", 60_000)
        users = seed.seed_users(url, c_list.account_id, "l", 100)
        seed.seed_phones(url, data_dir, c_list.account_id, "l", users, 1000)
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                             autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # plans on statistics, as a database in use has them
        old_pool = _site_dir(work, "old-pool", _OLD_POOL)
        sides = {
            "group on": {}, "group off": {"SIPPHONES_DATABASE_GROUP_CREATES": "1"},
            "pool on": {}, "pool off": {"PYTHONPATH": str(old_pool)},
        }
        servers = {}
        watch = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                                autocommit=True)
        cleanup.add("sessions watch", watch.close)

        def sessions() -> int:
            time.sleep(1.1)  # statistics reach pg_stat_database within a second
            watch.execute("SELECT pg_stat_clear_snapshot()")
            return watch.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]

        for side, env in sides.items():
            port = free_port()
            srv = launch(f"ab-{side.replace(' ', '-')}", serve_argv(port, 2), log_dir=work / side.replace(" ", "-"),
                         env=dict(serve_env(data_dir, url), **env), port=port)
            cleanup.add(f"server {side} (pid {srv.pid})", srv.stop)
            srv.wait_ready("/healthz", timeout=60)
            servers[side] = srv
        db = pg_backends(admin_url, url, cleanup)
        create = Workload("create", "POST", "/v2/sip_phones", access_token(servers["group on"], c_create),
                          prefix="c", expect=201)
        # A page of the registration status view: an outer join of 30 phones, on the SQLAlchemy path.
        status = Workload("list", "GET", "/_sipphones/v1/sip_phones/status?page_size=30",
                          access_token(servers["pool on"], c_list))
        cases = {"group": create, "pool": status}
        for name, w in cases.items():
            for side in (f"{name} on", f"{name} off"):   # warm-up, discarded
                saturate(w, servers[side], target=side.replace(" ", "-"), duration=2, script_dir=work / "wrk")
        for r in range(rounds):
            for name, w in cases.items():
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for half in order:
                    side = f"{name} {half}"
                    before = sessions()
                    m = saturate(w, servers[side], target=side.replace(" ", "-"), duration=duration,
                                 script_dir=work / "wrk", db_pids=db)
                    started = sessions() - before
                    bad = {k: v for k, v in m.statuses.items() if k != str(w.expect)}
                    got = results.setdefault(side, {"req_s": [], "cpu": [], "db_cpu": [], "sessions": []})
                    got["req_s"].append(m.req_s)
                    got["cpu"].append(m.cpu_us_per_req)
                    got["db_cpu"].append(m.db_cpu_s / max(m.requests, 1) * 1e6)
                    got["sessions"].append(started)
                    print(f"  round {r + 1} {side}: {m.req_s:.0f} req/s  {m.cpu_us_per_req:.0f} us/req server  "
                          f"{got['db_cpu'][-1]:.0f} us/req PostgreSQL  {started} new backends  p99 {m.p99_ms:.1f} ms"
                          f"  (other cores {m.extra['other_cores']:.2f}){'  BAD ' + str(bad) if bad else ''}",
                          file=sys.stderr)
    finally:
        cleanup.run()
    for name, what in (("group", "phone creates"), ("pool", "status pages (SQLAlchemy path)")):
        on, off = results[f"{name} on"], results[f"{name} off"]
        print(summary(f"PostgreSQL {what} req/s, {name} on/off (higher is better)", on["req_s"], off["req_s"], True))
        print(summary(f"PostgreSQL {what} server CPU us/req (lower is better)", on["cpu"], off["cpu"], False))
        print(summary(f"PostgreSQL {what} PostgreSQL CPU us/req (lower is better)", on["db_cpu"], off["db_cpu"],
                      False))
        print(f"PostgreSQL {what}: new backends per {duration:g} s run: on {statistics.median(on['sessions']):.0f} "
              f"[{min(on['sessions'])}-{max(on['sessions'])}], off {statistics.median(off['sessions']):.0f} "
              f"[{min(off['sessions'])}-{max(off['sessions'])}]")


# --- users on the raw hot path, against an older tree ------------------------------------------

def ab_users(rounds: int, duration: float, admin_url: str | None, old_src: Path) -> None:
    """``POST /v2/users`` on ``serve --workers 2``: A this tree, B the ``src`` directory of an older
    one on B's ``PYTHONPATH`` (made by ``git archive <commit> src | tar -x -C DIR`` with the
    compiled SIP core's ``.so`` files copied beside, as ``bootstrap.sh`` built them), both on one
    store (SQLite, then PostgreSQL unless ``admin_url`` is None); wrk ``-t2 -c64``."""
    from bench import seed
    from bench.coldstart import serve_argv, serve_env
    from bench.loadgen import saturate
    from bench.procs import free_port, launch
    from bench.run import Cleanup, access_token, create_pg_database, pg_backends
    from bench.workload import Workload

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="sipphones-ab-users-"))
    cleanup = Cleanup()
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    try:
        stores = [("sqlite", f"sqlite:///{work / 'sqlite' / 'sipphones.db'}")]
        if admin_url:
            stores.append(("postgres", create_pg_database(admin_url, cleanup)))
        for store, url in stores:
            data_dir = work / store
            seed.prepare_schema(url)
            creds = seed.provision_account(url, data_dir, f"ab-users-{store}")
            servers = {}
            for side, env in (("on", {}), ("off", {"PYTHONPATH": str(old_src)})):
                port = free_port()
                srv = launch(f"ab-users-{store}-{side}", serve_argv(port, 2), log_dir=data_dir,
                             env=dict(serve_env(data_dir, url), **env), port=port)
                cleanup.add(f"server {store} {side} (pid {srv.pid})", srv.stop)
                srv.wait_ready("/healthz", timeout=60)
                servers[side] = srv
            db = pg_backends(admin_url, url, cleanup) if store == "postgres" else None
            w = Workload("users", "POST", "/v2/users", access_token(servers["on"], creds), prefix="n", expect=201)
            for side in ("on", "off"):
                saturate(w, servers[side], target=f"{store}-{side}", duration=2, script_dir=work / "wrk")
            got = out.setdefault(store, {"on": {"req_s": [], "cpu": []}, "off": {"req_s": [], "cpu": []}})
            for r in range(rounds):
                for side in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    m = saturate(w, servers[side], target=f"{store}-{side}", duration=duration,
                                 script_dir=work / "wrk", db_pids=db)
                    got[side]["req_s"].append(m.req_s)
                    got[side]["cpu"].append(m.cpu_us_per_req)
                    bad = {k: v for k, v in m.statuses.items() if k != "201"}
                    print(f"  round {r + 1} {store} users {side}: {m.req_s:.0f} req/s  {m.cpu_us_per_req:.0f} us/req "
                          f"server (other cores {m.extra['other_cores']:.2f}){'  BAD ' + str(bad) if bad else ''}",
                          file=sys.stderr)
            for srv in servers.values():
                srv.stop()
    finally:
        cleanup.run()
    for store, got in out.items():
        print(summary(f"{store} POST /v2/users req/s, this tree vs {old_src} (higher is better)",
                      got["on"]["req_s"], got["off"]["req_s"], True))
        print(summary(f"{store} POST /v2/users server CPU us/req (lower is better)", got["on"]["cpu"],
                      got["off"]["cpu"], False))


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
    ap.add_argument("case", choices=("gc", "coalesce", "one-send", "pg", "users"))
    ap.add_argument("--old-src", type=Path, help="users: the src directory of the older tree (B)")
    ap.add_argument("--no-postgres", action="store_true", help="users: SQLite only")
    ap.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test",
                    help="pg: a PostgreSQL database to connect to for CREATE/DROP DATABASE (a fresh one is used)")
    ap.add_argument("--duration", type=float, default=5.0, help="one-send: seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--phones", type=int, default=10000, help="coalesce: phones per round")
    args = ap.parse_args()
    if args.case == "gc":
        ab_gc(args.rounds)
    elif args.case == "one-send":
        ab_one_send(args.rounds, args.duration)
    elif args.case == "pg":
        ab_pg(args.rounds, args.duration, args.postgres_url)
    elif args.case == "users":
        if args.old_src is None or not (args.old_src / "sipphones").is_dir():
            ap.error("users needs --old-src DIR holding an older tree's sipphones package")
        ab_users(args.rounds, args.duration, None if args.no_postgres else args.postgres_url, args.old_src.resolve())
    else:
        ab_coalesce(args.rounds, args.phones)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
