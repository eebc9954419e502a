"""The sipphones benchmark: one command, everything started and stopped by itself.

    .venv/bin/python bench/run.py            # full run, about 8-10 minutes
    .venv/bin/python bench/run.py --quick    # about 2-3 minutes, one round, shorter runs

What it measures (see bench/README.md for what each figure means):
1. cold start of ``sipphones serve`` (1 and 2 workers, fresh SQLite file) and clean multi-worker starts;
2. saturation throughput with wrk ``-t2 -c64``: a bare ASGI endpoint (the ceiling; also on
   the one-send HTTP protocol ``sipphones serve`` runs, as a second reference), then phone create,
   user create (``POST /v2/users``, beside phone create: issue 12's ratio), list page of 30 and
   update against ``sipphones serve --workers 2`` on SQLite and PostgreSQL, in
   interleaved rounds, medians, each as a ratio to the bare endpoint of the same run;
3. latency at half the maximum throughput, open loop (bench/ratedriver.py);
4. a list page at depth ~1,000,000 against the first page.
Prints tables, writes bench/results/bench-<time>-<mode>.json, exits 1 if a check failed (a
non-2xx answer, a create that did not create a phone, a start that was not clean).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the repository root, not from bench/ itself.
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench import coldstart, deep, hotspots, loadgen, report, seed  # noqa: E402
from bench.procs import REPO, Server, free_port, launch, wait_for_quiet  # noqa: E402
from bench.workload import Workload  # noqa: E402
from sipphones.api import http_protocol  # noqa: E402

RESULTS = REPO / "bench" / "results"
LIST_PATH = "/v2/sip_phones/phones?page_size=30"
CASES = ("create", "users", "list", "update")


@dataclass
class Mode:
    name: str
    rounds: int
    duration: float
    warmup: float
    rate_duration: float
    rate_warmup: float
    cold_launches: int
    clean_launches: int
    deep_rows: int
    deep_postgres: bool
    deep_samples: int
    deep_wrk_s: float
    deep_rounds: int
    create_users: int
    list_phones: int
    quiet_wait: float = 0.0  # seconds to wait for an idle machine before each measurement (0: never)


QUICK = Mode("quick", rounds=1, duration=4, warmup=1, rate_duration=4, rate_warmup=1, cold_launches=3,
             clean_launches=3, deep_rows=1_000_000, deep_postgres=False, deep_samples=100, deep_wrk_s=2,
             deep_rounds=2, create_users=40_000, list_phones=1000)
FULL = Mode("full", rounds=3, duration=10, warmup=2, rate_duration=10, rate_warmup=2, cold_launches=7,
            clean_launches=10, deep_rows=1_000_000, deep_postgres=True, deep_samples=300, deep_wrk_s=4,
            deep_rounds=3, create_users=150_000, list_phones=1000)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Cleanup:
    """Everything the run started or created, undone in reverse order (servers by PID, databases, files)."""

    def __init__(self):
        self.actions: list[tuple[str, callable]] = []

    def add(self, what: str, fn) -> None:
        self.actions.append((what, fn))

    def run(self) -> None:
        while self.actions:
            what, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                log(f"cleanup of {what} failed: {e}")


# --- stores --------------------------------------------------------------------------------------

def create_pg_database(admin_url: str, cleanup: Cleanup) -> str:
    from sqlalchemy.engine import make_url

    from tests.pg import fresh_postgres_database

    url, drop = fresh_postgres_database(admin_url, "sipphones_bench")
    cleanup.add(f"database {make_url(url).database}", drop)
    return url


def pg_backends(admin_url: str, database_url: str, cleanup: Cleanup):
    """A function listing the PIDs of the PostgreSQL backends connected to ``database_url``'s database:
    their CPU is the database's share of a request (SQLite's is inside the server process)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(database_url).database
    conn = psycopg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False),
                           autocommit=True)
    cleanup.add("backend-listing connection", conn.close)

    def pids() -> list[int]:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (name,)).fetchall()
        return [r[0] for r in rows]

    return pids


def start_serve(name: str, url: str, data_dir: Path, cleanup: Cleanup, workers: int = 2,
                serve_args: tuple[str, ...] = ()) -> Server:
    port = free_port()
    srv = launch(name, coldstart.serve_argv(port, workers) + list(serve_args), log_dir=data_dir, port=port,
                 env=coldstart.serve_env(data_dir, url))
    cleanup.add(f"server {name} (pid {srv.pid})", srv.stop)
    srv.wait_ready("/healthz", timeout=60)
    return srv


# The second reference: the same bare app on the HTTP protocol ``sipphones serve`` runs
# (``sipphones.api.http_protocol``: a response's head and body in one send). The targets are
# measured against the reference, stock uvicorn (``bare-asgi``); this row shows what the
# protocol alone is worth, and the report gives each ratio against it too.
ONE_SEND = http_protocol.PROTOCOL
ONE_SEND_BARE = "bare-one-send"
STOCK_SERVE = "sqlite-stock"   # ``serve --http httptools`` on SQLite: the service on the stock protocol


def start_bare(workdir: Path, cleanup: Cleanup, http: str = "httptools", name: str = "bare-asgi") -> Server:
    """The bare ASGI app under uvicorn, 2 workers; ``http``: uvicorn's protocol (stock httptools: the
    issue's reference), or ``ONE_SEND`` (the protocol ``sipphones serve`` runs: a second reference)."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "bench"), "bare_asgi:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", http, "--no-access-log",
            "--log-level", "warning"]
    srv = launch(name, argv, log_dir=workdir / name, port=port)
    cleanup.add(f"{name} (pid {srv.pid})", srv.stop)
    srv.wait_ready("/", timeout=30)
    return srv


def access_token(server: Server, creds: seed.Credentials) -> str:
    r = httpx.post(f"{server.base_url}/oauth/token", auth=(creds.client_id, creds.client_secret),
                   data={"grant_type": "account_credentials", "account_id": creds.account_id}, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"/oauth/token answered {r.status_code}: {r.text}")
    return r.json()["access_token"]


@dataclass
class Target:
    """One ``sipphones serve --workers 2`` with its seeded store and the three workloads."""

    name: str
    url: str
    data_dir: Path
    server: Server | None = None
    create_account: str = ""
    workloads: dict | None = None
    created_ok: int = 0   # 201 answers counted by the load generators (warm-ups included)
    db_pids: object = None  # PostgreSQL: lists the backends' PIDs (their CPU is reported as "db")


def prepare_target(name: str, url: str, data_dir: Path, mode: Mode, cleanup: Cleanup,
                   pg_admin: str | None = None, serve_args: tuple[str, ...] = ()) -> Target:
    t0 = time.monotonic()
    seed.prepare_schema(url)
    c_create = seed.provision_account(url, data_dir, "bench-create")
    c_list = seed.provision_account(url, data_dir, "bench-list")
    seed.seed_users(url, c_create.account_id, "c", mode.create_users)
    list_users = seed.seed_users(url, c_list.account_id, "l", (mode.list_phones + 9) // 10)
    ids = seed.seed_phones(url, data_dir, c_list.account_id, "l", list_users, mode.list_phones)
    srv = start_serve(f"serve-{name}", url, data_dir, cleanup, serve_args=serve_args)
    tok_c, tok_l = access_token(srv, c_create), access_token(srv, c_list)
    t = Target(name, url, data_dir, srv, c_create.account_id)
    if pg_admin:
        t.db_pids = pg_backends(pg_admin, url, cleanup)
    t.workloads = {
        "create": Workload("create", "POST", "/v2/sip_phones", tok_c, prefix="c", expect=201),
        # new users of the same account, next to the phone creates (no seeded user has prefix "n")
        "users": Workload("users", "POST", "/v2/users", tok_c, prefix="n", expect=201),
        "list": Workload("list", "GET", LIST_PATH, tok_l),
        "update": Workload("update", "PATCH", "/v2/sip_phones/phones/{id}", tok_l, ids=ids, expect=204),
    }
    sanity_check(t)
    log(f"{name}: store seeded ({mode.create_users:,} users to create phones for, {mode.list_phones:,} phones "
        f"to list/update) and server up in {time.monotonic() - t0:.1f}s")
    return t


def sanity_check(t: Target) -> None:
    """One request of each workload through the same raw bytes the driver sends: right status and shape."""
    from bench.deep import KeepAlive

    c = KeepAlive(t.server.port)
    try:
        for case, w in t.workloads.items():
            status, body, _ = c.exchange(w.raw_request(0, f"127.0.0.1:{t.server.port}"))
            if status != w.expect:
                raise RuntimeError(f"{t.name} {case}: expected {w.expect}, got {status}: {body[:300]!r}")
            if case in ("create", "users"):
                t.created_ok += case == "create"
                w.advance(1)
            if case == "list" and len(json.loads(body)["phones"]) != 30:
                raise RuntimeError(f"{t.name} list: expected 30 phones: {body[:300]!r}")
    finally:
        c.close()


# --- phases ----------------------------------------------------------------------------------------

def run_cold(workdir: Path, mode: Mode, clean_workers: int) -> dict:
    log(f"cold start: {mode.cold_launches} launches each of 1 and 2 workers")
    starts = coldstart.cold_starts(workdir / "cold", (1, 2), mode.cold_launches)
    log(f"clean starts: {mode.clean_launches} launches of {clean_workers} workers on a fresh SQLite file")
    clean = coldstart.check_clean_starts(workdir / "clean", clean_workers, mode.clean_launches)
    for f in clean.failures:
        log(f"UNCLEAN START: {f}")
    return {
        "starts": {w: coldstart.summarize(v) for w, v in starts.items()},
        "clean": {"workers": clean_workers, "launches": clean.launches, "failures": clean.failures,
                  "median_ready_s": statistics.median(clean.ready_s) if clean.ready_s else float("nan")},
    }


def quiet(mode: Mode) -> None:
    if mode.quiet_wait > 0:
        waited, busy = wait_for_quiet(mode.quiet_wait)
        if busy > 0.3:
            log(f"  (machine still {busy:.1f} cores busy after waiting {waited:.0f}s: measuring anyway)")


def measure(w: Workload, srv: Server, target: str, mode: Mode, scripts: Path, t: Target | None = None):
    db = t.db_pids if t is not None else None
    quiet(mode)
    warm = loadgen.saturate(w, srv, target=target, duration=mode.warmup, script_dir=scripts, db_pids=db)
    m = loadgen.saturate(w, srv, target=target, duration=mode.duration, script_dir=scripts, db_pids=db)
    if t is not None and w.name == "create":
        t.created_ok += warm.statuses.get("201", 0) + m.statuses.get("201", 0)
    for x in (warm, m):
        if w.count_statuses and sum(x.statuses.values()) != x.statuses.get(str(w.expect), 0):
            log(f"  !! {target} {w.name}: statuses {x.statuses} (expected only {w.expect})")
    log(f"  {target:9s} {w.name:7s} {m.req_s:9,.0f} req/s  p50 {m.p50_ms:6.1f} ms  p99 {m.p99_ms:6.1f} ms  "
        f"{m.cpu_us_per_req:5.0f} us CPU/req  srv {m.server_cores:.2f} db {m.db_cpu_s / m.duration_s:.2f} "
        f"wrk {m.loadgen_cpu_s / m.duration_s:.2f} other {m.other_cores:.2f} cores")
    return m, warm


def run_throughput(workdir: Path, mode: Mode, targets: list[Target], cleanup: Cleanup, scripts: Path,
                   want_profile: bool) -> dict:
    bare_srv = start_bare(workdir, cleanup)
    one_send_srv = start_bare(workdir, cleanup, http=ONE_SEND, name=ONE_SEND_BARE)
    bare_w = Workload("bare", "GET", "/", count_statuses=False)
    runs: dict[str, list[loadgen.Measurement]] = {}
    all_runs: list[dict] = []
    checks: list[str] = []
    for r in range(mode.rounds):
        log(f"round {r + 1}/{mode.rounds}: wrk -t2 -c64, {mode.warmup:g}s warm-up + {mode.duration:g}s measured")
        for name, srv in (("bare-asgi", bare_srv), (ONE_SEND_BARE, one_send_srv)):
            m, warm = measure(bare_w, srv, name, mode, scripts)
            runs.setdefault(f"{name}/get", []).append(m)
            all_runs += [dict(warm.as_dict(), warmup=True), m.as_dict()]
        for t in targets:
            for case in CASES:
                w = t.workloads[case]
                m, warm = measure(w, t.server, t.name, mode, scripts, t)
                runs.setdefault(f"{t.name}/{case}", []).append(m)
                all_runs += [dict(warm.as_dict(), warmup=True), m.as_dict()]
                for x in (warm, m):
                    if x.non_2xx or sum(x.statuses.values()) != x.statuses.get(str(w.expect), 0):
                        checks.append(f"{t.name} {case}: statuses {x.statuses}, expected only {w.expect}")
                    sock_errors = {k: v for k, v in x.errors.items() if k != "status" and v}
                    if sock_errors:
                        checks.append(f"{t.name} {case}: socket errors {sock_errors}")
    bare = report.summarize_case(runs["bare-asgi/get"], None)
    summary = {"bare-asgi/get": bare}
    for key, ms in runs.items():
        if key != "bare-asgi/get":
            summary[key] = report.summarize_case(ms, bare)

    # Latency at half the maximum throughput, open loop.
    rate_runs = {}
    log(f"constant rate at 1/2 of each maximum: {mode.rate_warmup:g}s lead-in + {mode.rate_duration:g}s measured")
    for t in targets:
        for case in CASES:
            w = t.workloads[case]
            rate = round(summary[f"{t.name}/{case}"]["req_s"] / 2)
            quiet(mode)
            m = loadgen.constant_rate(w, t.server, target=t.name, rate=rate, duration=mode.rate_duration,
                                      warmup=mode.rate_warmup, script_dir=scripts, db_pids=t.db_pids)
            if case == "create":
                t.created_ok += m.statuses.get("201", 0) + m.extra["warmup_statuses"].get("201", 0)
            bad = m.non_2xx or sum(m.statuses.values()) != m.statuses.get(str(w.expect), 0)
            if bad or m.errors.get("unfinished") or m.errors.get("lost_in_flight"):
                checks.append(f"{t.name} {case} at constant rate: statuses {m.statuses}, {m.errors}")
            rate_runs[f"{t.name}/{case}"] = {
                "target_rate": rate, "achieved_req_s": m.req_s, "p50_ms": m.p50_ms, "p90_ms": m.p90_ms,
                "p99_ms": m.p99_ms, "p999_ms": m.extra["p999_ms"], "max_ms": m.max_ms,
                "dispatch_lag_p99_ms": m.extra["dispatch_lag_ms"]["p99"], "max_queue": m.extra["max_queue"],
                "cpu_us_per_req": m.cpu_us_per_req, "server_cores": m.server_cpu_s / m.duration_s,
                "db_cores": m.db_cpu_s / m.duration_s,
                "driver_cores": m.loadgen_cpu_s / (m.extra["wall_s"] or 1), "other_cores": m.other_cores,
                "non_2xx": m.non_2xx, "statuses": m.statuses, "errors": m.errors,
            }
            log(f"  {t.name:9s} {case:7s} at {rate:,}/s: p50 {m.p50_ms:.1f} ms  p99 {m.p99_ms:.1f} ms  "
                f"p99.9 {m.extra['p999_ms']:.1f} ms  max {m.max_ms:.1f} ms  statuses {m.statuses}")

    profiles = {}
    if want_profile:
        profiles = run_profiles(targets, scripts, workdir)

    # Every 201 must be a new phone: the rows in the store match the answers counted.
    for t in targets:
        rows, stored = seed.phone_count(t.url, t.create_account)
        # wrk stops with up to 64 requests in flight; the server still answers them, uncounted.
        slack = (2 * mode.rounds + (1 if want_profile else 0)) * 64
        note = f"{t.name}: {t.created_ok:,} creates answered 201, {rows:,} phones stored, phone_count {stored:,}"
        log(note)
        if rows != stored:
            checks.append(f"{t.name}: phone_count {stored} differs from the {rows} rows stored")
        if not 0 <= rows - t.created_ok <= slack:
            checks.append(f"{note}: the difference exceeds the requests in flight when runs ended ({slack})")
    bare_srv.stop()
    one_send_srv.stop()
    return {"summary": summary, "rate": rate_runs, "runs": all_runs, "checks": checks, "profiles": profiles}


def run_profiles(targets: list[Target], scripts: Path, workdir: Path) -> dict:
    """py-spy under wrk load, per target and case (a separate run: sampling slows the server)."""
    out = {}
    seconds = 6
    for t in targets:
        for case in CASES:
            raw = RESULTS / f"profile-{t.name}-{case}.txt"
            raw.parent.mkdir(parents=True, exist_ok=True)
            spy = hotspots.record(t.server.pid, seconds, raw)
            time.sleep(0.5)
            m = loadgen.saturate(t.workloads[case], t.server, target=t.name, duration=seconds, script_dir=scripts)
            spy.wait(60)
            if case == "create":
                t.created_ok += m.statuses.get("201", 0)
            summary = hotspots.summarize(raw) if raw.exists() else {"samples": 0}
            summary["req_s"] = m.req_s
            summary["raw"] = str(raw.relative_to(REPO))
            out[f"{t.name}/{case}"] = summary
            log(f"  profiled {t.name} {case}: {summary.get('samples', 0)} samples -> {raw.relative_to(REPO)}")
    return out


def run_deep(workdir: Path, mode: Mode, pg_admin: str | None, cleanup: Cleanup, scripts: Path) -> dict:
    out = {}
    stores = [("sqlite", None)]
    if pg_admin and mode.deep_postgres:
        stores.append(("postgres", pg_admin))
    for name, admin in stores:
        data_dir = workdir / f"deep-{name}"
        url = create_pg_database(admin, cleanup) if admin else f"sqlite:///{data_dir / 'sipphones.db'}"
        log(f"deep pagination on {name}: seeding {mode.deep_rows:,} phones")
        t0 = time.monotonic()
        seed.prepare_schema(url)
        creds = seed.provision_account(url, data_dir, "bench-deep")
        users = seed.seed_users(url, creds.account_id, "d", (mode.deep_rows + 9) // 10)
        ids = seed.seed_phones(url, data_dir, creds.account_id, "d", users, mode.deep_rows)
        seed_s = time.monotonic() - t0
        log(f"  seeded in {seed_s:.0f}s")
        srv = start_serve(f"deep-{name}", url, data_dir, cleanup)
        token = access_token(srv, creds)
        pages = deep.deep_pages(data_dir, creds.account_id, ids)
        deep.check_pages(srv, token, pages, ids)
        lat = deep.sequential_latency(srv, token, pages, warmup=30, samples=mode.deep_samples)
        first_w = Workload("list", "GET", pages.first_path, token)
        deep_w = Workload("list", "GET", pages.deep_path, token)
        for w in (first_w, deep_w):  # warm both pages
            loadgen.saturate(w, srv, target=f"deep-{name}", duration=1, script_dir=scripts)
        got: dict[str, list[loadgen.Measurement]] = {"first": [], "deep": []}
        for _ in range(mode.deep_rounds):  # interleaved: first, deep, first, deep, ...
            for label, w in (("first", first_w), ("deep", deep_w)):
                m = loadgen.saturate(w, srv, target=f"deep-{name}", duration=mode.deep_wrk_s, script_dir=scripts)
                if m.non_2xx or sum(m.statuses.values()) != m.statuses.get("200", 0):
                    raise RuntimeError(f"deep {name} {label}: statuses {m.statuses}")
                got[label].append(m)
        thr = {}
        for label, ms in got.items():
            thr[f"{label}_req_s"] = statistics.median(m.req_s for m in ms)
            thr[f"{label}_p99_ms"] = statistics.median(m.p99_ms for m in ms)
            thr[f"{label}_runs"] = [m.req_s for m in ms]
        thr["ratio"] = thr["first_req_s"] / thr["deep_req_s"]
        log(f"  first page {lat['first']['median_ms']:.2f} ms, page at depth {pages.depth:,} "
            f"{lat['deep']['median_ms']:.2f} ms (x{lat['ratio']:.2f}); wrk {thr['first_req_s']:,.0f} vs "
            f"{thr['deep_req_s']:,.0f} req/s")
        out[name] = {"rows": mode.deep_rows, "depth": pages.depth, "seed_s": seed_s, "latency": lat, "throughput": thr}
        srv.stop()
    return out


# --- main ------------------------------------------------------------------------------------------

def environment() -> dict:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip()
        except OSError:
            return ""

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "")
    versions = {}
    from importlib.metadata import PackageNotFoundError, version
    for pkg in ("sipphones", "uvicorn", "uvloop", "httptools", "starlette", "sqlalchemy", "aiosqlite", "psycopg",
                "orjson", "limits", "pyjwt"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "git": cmd("git", "rev-parse", "--short", "HEAD"), "git_dirty": bool(cmd("git", "status", "--porcelain", "src")),
            "wrk": cmd(loadgen.WRK, "-v").splitlines()[0] if cmd(loadgen.WRK, "-v") else "", "packages": versions,
            "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one round of shorter runs, deep pagination on SQLite only")
    p.add_argument("--rounds", type=int, help="interleaved rounds of saturation runs (median over rounds)")
    p.add_argument("--duration", type=float, help="seconds per measured wrk run")
    p.add_argument("--postgres-url", default=os.environ.get("SIPPHONES_BENCH_POSTGRES_URL",
                                                            "postgresql://postgres@127.0.0.1:5432/test"),
                   help="a PostgreSQL database to connect to for CREATE/DROP DATABASE (a fresh one is used)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--deep-rows", type=int, help="phones in the deep-pagination store (default 1,000,000)")
    p.add_argument("--skip", action="append", default=[], choices=["cold", "throughput", "deep"],
                   help="leave out a part (repeatable)")
    p.add_argument("--clean-workers", type=int, default=4, help="workers for the clean multi-worker start check")
    p.add_argument("--profile", action="store_true", help="also py-spy each endpoint under load (separate runs)")
    p.add_argument("--output", type=Path, help="JSON result file (default bench/results/bench-<time>-<mode>.json)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temporary data directories and logs")
    p.add_argument("--quiet-wait", type=float, default=0.0, metavar="S",
                   help="before each measurement wait up to S seconds for the machine to be idle (shared machines)")
    args = p.parse_args(argv)

    mode = QUICK if args.quick else FULL
    if args.rounds:
        mode.rounds = args.rounds
    if args.duration:
        mode.duration = args.duration
    if args.deep_rows:
        mode.deep_rows = args.deep_rows
    mode.quiet_wait = args.quiet_wait
    if not shutil.which(loadgen.WRK) and not Path(loadgen.WRK).exists():
        print(f"wrk not found ({loadgen.WRK}): apt-get install -y wrk", file=sys.stderr)
        return 2
    pg_admin = None if args.no_postgres else args.postgres_url

    started = time.monotonic()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    workdir = Path(tempfile.mkdtemp(prefix="sipphones-bench-"))
    scripts = workdir / "scripts"
    cleanup = Cleanup()
    if not args.keep_workdir:
        cleanup.add(f"work directory {workdir}", lambda: shutil.rmtree(workdir, ignore_errors=True))

    def on_term(signum, frame):  # SIGTERM: clean up like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    result: dict = {"mode": mode.name, "started_utc": stamp, "environment": environment(), "mode_settings": mode.__dict__}
    checks: list[str] = []
    log(f"sipphones benchmark ({mode.name}); work directory {workdir}")
    try:
        if "cold" not in args.skip:
            result["cold_start"] = run_cold(workdir, mode, args.clean_workers)
            checks += [f"unclean start: {f.splitlines()[0]}" for f in result["cold_start"]["clean"]["failures"]]
        if "throughput" not in args.skip:
            targets = [prepare_target("sqlite", f"sqlite:///{workdir / 'tp-sqlite' / 'sipphones.db'}",
                                      workdir / "tp-sqlite", mode, cleanup)]
            # The same service on uvicorn's stock protocol: its ratios to the stock bare endpoint
            # compare like with like (what the service adds on top of the same HTTP server).
            targets.append(prepare_target(STOCK_SERVE, f"sqlite:///{workdir / 'tp-stock' / 'sipphones.db'}",
                                          workdir / "tp-stock", mode, cleanup, serve_args=("--http", "httptools")))
            if pg_admin:
                targets.append(prepare_target("postgres", create_pg_database(pg_admin, cleanup),
                                              workdir / "tp-postgres", mode, cleanup, pg_admin))
            tp = run_throughput(workdir, mode, targets, cleanup, scripts, args.profile)
            for t in targets:
                t.server.stop()
            result["throughput"] = {"summary": tp["summary"], "constant_rate": tp["rate"], "runs": tp["runs"]}
            if tp["profiles"]:
                result["profiles"] = tp["profiles"]
            checks += tp["checks"]
        if "deep" not in args.skip:
            result["deep_pagination"] = run_deep(workdir, mode, pg_admin, cleanup, scripts)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        checks.append("interrupted")
    except Exception as e:  # noqa: BLE001 - report what was measured so far, then fail
        import traceback

        traceback.print_exc()
        checks.append(f"aborted: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    finally:
        cleanup.run()
    result["checks_failed"] = checks
    result["elapsed_s"] = time.monotonic() - started

    out = args.output or RESULTS / f"bench-{stamp}-{mode.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_finite(result), indent=2, default=str) + "\n")
    print_report(result)
    print(f"\nresults: {out}  ({result['elapsed_s']:.0f}s)")
    if checks:
        print("\nCHECKS FAILED:\n  " + "\n  ".join(checks))
        return 1
    return 0


def _finite(value):
    """NaN/inf become null: the result file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def print_report(result: dict) -> None:
    env = result["environment"]
    print(f"\nsipphones benchmark, {result['mode']} mode, {result['started_utc']}, git {env['git']}"
          f"{' (src modified)' if env['git_dirty'] else ''}; {env['cores']} x {env['cpu']}; "
          f"load average at start {' '.join(env['loadavg_at_start'])}")
    tp = result.get("throughput")
    if tp:
        print("\n" + report.throughput_table(tp["summary"]))
        print("\n" + report.rate_table(tp["constant_rate"]))
        bare = tp["summary"]["bare-asgi/get"]["req_s"]
        print(f"\nTargets vs bare ASGI ({bare:,.0f} req/s in this run): create and list >= "
              f"{report.TARGET_RATIO:.0%}, i.e. >= {report.TARGET_RATIO * bare:,.0f} req/s")
        one_send = tp["summary"].get(f"{ONE_SEND_BARE}/get")
        for key, s in tp["summary"].items():
            target, case = key.split("/")
            if case in ("create", "list"):
                verdict = "ok" if s["x_bare_req_s"] >= report.TARGET_RATIO else "MISSED"
                also = (f"   ({s['req_s'] / one_send['req_s']:6.1%} of the bare app on sipphones' one-send protocol)"
                        if one_send else "")
                print(f"  {target:9s} {case:7s} {s['x_bare_req_s']:6.1%} of bare  {verdict}{also}")
        print(report.shares_text(tp["summary"], CASES))
    if result.get("profiles"):
        print("\nWhere the CPU goes (py-spy, share of samples of the server processes):")
        print(report.profile_text(result["profiles"]))
    if result.get("deep_pagination"):
        print("\n" + report.deep_table(result["deep_pagination"]))
    if result.get("cold_start"):
        print("\n" + report.cold_table(result["cold_start"]))


if __name__ == "__main__":
    sys.exit(main())
