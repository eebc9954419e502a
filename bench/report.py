"""Turning the benchmark's measurements into the printed tables and the verdicts on the targets."""

from __future__ import annotations

import statistics
from typing import Iterable

from bench.loadgen import Measurement

# The targets of issue 2 ("Targets").
PG_TARGETS = {"create": 0.10, "list": 0.20}  # issue 15: PostgreSQL's shares of the bare endpoint
USERS_TARGET = 0.5   # issue 12: POST /v2/users >= half the phone creates' req/s on the same store
TARGET_RATIO = 0.20          # create and list: >= 20 % of the bare ASGI req/s, same run
TARGET_P99_MS = 25.0         # p99 at half the maximum throughput
TARGET_DEEP_RATIO = 1.20     # deep page within 20 % of the first page
TARGET_COLD_S = 1.0          # serve answers /healthz within 1 s


def median_of(ms: list[Measurement], attr: str) -> float:
    return statistics.median(getattr(m, attr) for m in ms)


def summarize_case(ms: list[Measurement], bare: dict | None) -> dict:
    req = [m.req_s for m in ms]
    out = {
        "runs": len(ms),
        "req_s": statistics.median(req), "req_s_min": min(req), "req_s_max": max(req),
        "p50_ms": median_of(ms, "p50_ms"), "p90_ms": median_of(ms, "p90_ms"), "p99_ms": median_of(ms, "p99_ms"),
        "max_ms": max(m.max_ms for m in ms),
        "cpu_us_per_req": median_of(ms, "cpu_us_per_req"), "server_cores": median_of(ms, "server_cores"),
        "cpu_us_per_req_with_db": median_of(ms, "cpu_us_per_req_with_db"),
        "db_cores": statistics.median(m.db_cpu_s / m.duration_s for m in ms),
        "loadgen_cores": statistics.median(m.loadgen_cpu_s / m.duration_s for m in ms),
        "other_cores": statistics.median(m.other_cores for m in ms),
        "non_2xx": sum(m.non_2xx for m in ms),
        "socket_errors": sum(sum(m.errors.values()) - m.errors.get("status", 0) for m in ms),
    }
    if bare:
        out["x_bare_req_s"] = out["req_s"] / bare["req_s"]
        out["x_bare_cpu"] = out["cpu_us_per_req"] / bare["cpu_us_per_req"]
    return out


def _table(headers: list[str], rows: Iterable[list[str]]) -> str:
    rows = [headers] + [list(r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _f(x: float, fmt: str = "{:,.0f}") -> str:
    return "n/a" if x is None or x != x else fmt.format(x)


def throughput_table(summary: dict) -> str:
    rows = []
    for key, s in summary.items():
        target, case = key.split("/")
        rows.append([
            f"{target} {case}", f"{_f(s['req_s'])} [{_f(s['req_s_min'])}-{_f(s['req_s_max'])}]",
            _f(s.get("x_bare_req_s", 1.0), "{:.3f}"), _f(s["p50_ms"], "{:.1f}"), _f(s["p99_ms"], "{:.1f}"),
            f"{_f(s['cpu_us_per_req'])} ({_f(s.get('x_bare_cpu', 1.0), '{:.1f}')}x)",
            _f(s["cpu_us_per_req_with_db"]) if s["db_cores"] else "-", _f(s["server_cores"], "{:.2f}"),
            _f(s["db_cores"], "{:.2f}") if s["db_cores"] else "-",
            _f(s["loadgen_cores"], "{:.2f}"), _f(s["other_cores"], "{:.2f}"), str(s["non_2xx"]),
        ])
    return _table(["wrk -t2 -c64", "req/s median [min-max]", "x bare", "p50 ms", "p99 ms", "CPU us/req (x bare)",
                   "+PG us/req", "srv cores", "PG cores", "wrk cores", "other cores", "non-2xx"], rows)


def rate_table(rate_runs: dict) -> str:
    rows = []
    for key, r in rate_runs.items():
        target, case = key.split("/")
        verdict = "ok" if r["p99_ms"] <= TARGET_P99_MS and r["non_2xx"] == 0 else "MISSED"
        rows.append([f"{target} {case}", _f(r["target_rate"]), _f(r["achieved_req_s"]), _f(r["p50_ms"], "{:.1f}"),
                     _f(r["p90_ms"], "{:.1f}"), _f(r["p99_ms"], "{:.1f}"), _f(r["p999_ms"], "{:.1f}"),
                     _f(r["max_ms"], "{:.1f}"), _f(r["dispatch_lag_p99_ms"], "{:.1f}"), _f(r["other_cores"], "{:.2f}"),
                     str(r["non_2xx"]), verdict])
    return _table(["constant rate = 1/2 max", "rate/s", "done/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                   "lag p99", "other cores", "non-2xx", f"p99<={TARGET_P99_MS:.0f}ms"], rows)


def deep_table(deep: dict) -> str:
    rows = []
    for target, d in deep.items():
        lat, thr = d["latency"], d["throughput"]
        rows.append([f"{target} ({d['rows']:,} phones, depth {d['depth']:,})",
                     _f(lat["first"]["median_ms"], "{:.2f}"), _f(lat["deep"]["median_ms"], "{:.2f}"),
                     _f(lat["ratio"], "{:.2f}"), _f(thr["first_req_s"]), _f(thr["deep_req_s"]),
                     _f(thr["ratio"], "{:.2f}"), _f(d["seed_s"], "{:.0f}"),
                     "ok" if lat["ratio"] <= TARGET_DEEP_RATIO else "MISSED"])
    return _table(["list page deep vs first", "first ms", "deep ms", "deep/first", "first req/s", "deep req/s",
                   "first/deep", "seed s", "<=1.20"], rows)


def cold_table(cold: dict) -> str:
    rows = []
    for workers, c in cold["starts"].items():
        rows.append([f"serve --workers {workers}, fresh SQLite file", _f(c["median_s"], "{:.2f}"),
                     f"{_f(c['min_s'], '{:.2f}')}-{_f(c['max_s'], '{:.2f}')}", str(len(c["runs"])),
                     "ok" if c["median_s"] <= TARGET_COLD_S else "MISSED"])
    cs = cold.get("clean")
    if cs:
        rows.append([f"clean starts, --workers {cs['workers']}, fresh file", _f(cs["median_ready_s"], "{:.2f}"),
                     "", f"{cs['launches'] - len(cs['failures'])}/{cs['launches']} clean",
                     "ok" if not cs["failures"] else "FAILED"])
    return _table(["cold start: launch -> first 200 /healthz", "median s", "range s", "runs", "target"], rows)


def profile_text(profiles: dict) -> str:
    out = []
    for key, p in profiles.items():
        if not p.get("samples"):
            out.append(f"{key}: no samples")
            continue
        out.append(f"{key}: {p['samples']} samples, {p.get('req_s', 0):,.0f} req/s while profiled")
        for row in p["phases"]:
            if row["pct"] >= 0.5:
                db = f"  (database layer {row['db_pct']:.1f}%)" if row["db_pct"] else ""
                out.append(f"    {row['pct']:5.1f}%  {row['phase']}{db}")
        libs = ", ".join(f"{r['library']} {r['pct']:.0f}%" for r in p["libraries_self"][:8])
        out.append(f"    self time by library: {libs}")
    return "\n".join(out)


def shares_text(summary: dict, cases: tuple[str, ...]) -> str:
    """Each case's share of the bare endpoint, the stores side by side (PostgreSQL beside SQLite),
    and user creates against phone creates on each store (issue 12's target)."""
    targets = list(dict.fromkeys(k.split("/")[0] for k in summary if k.split("/")[1] in cases))
    lines = ["\nShare of bare ASGI req/s, the stores side by side:",
             "  " + " " * 8 + "".join(f"{t:>14s}" for t in targets)]
    for case in cases:
        cells = [summary.get(f"{t}/{case}") for t in targets]
        lines.append(f"  {case:8s}" + "".join(f"{c['x_bare_req_s']:14.1%}" if c else f"{'-':>14s}" for c in cells))
    for case, target in PG_TARGETS.items():
        pg = summary.get(f"postgres/{case}")
        if pg:
            lines.append(f"  PostgreSQL {case} {pg['x_bare_req_s']:.1%} of bare (issue 15: >= {target:.0%}): "
                         f"{'ok' if pg['x_bare_req_s'] >= target else 'MISSED'}")
    lines.append(f"\nPOST /v2/users vs phone creates (same store, same run; target >= {USERS_TARGET:.0%}):")
    for t in targets:
        users, create = summary.get(f"{t}/users"), summary.get(f"{t}/create")
        if users and create:
            ratio = users["req_s"] / create["req_s"]
            lines.append(f"  {t:12s} {users['req_s']:9,.0f} users/s vs {create['req_s']:9,.0f} phones/s: {ratio:6.1%}  "
                         f"{'ok' if ratio >= USERS_TARGET else 'MISSED'}")
    return "\n".join(lines)
