"""Running the two load generators and turning their output into one kind of record.

* ``saturate``: wrk, closed loop, ``-t2 -c64`` as in the reference figures; the wrk Lua script
  (``Workload.lua``) tallies status codes and prints a JSON summary line.
* ``constant_rate``: ``bench/ratedriver.py`` in its own process, open loop at a fixed rate.

Both read the server tree's CPU time from procfs before and after, and wrk's / the driver's own CPU
(``wait4`` rusage), because the load generator shares the machine's two cores with the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from typing import Callable

from bench.procs import CLOCK_TICKS, REPO, Server, cpu_seconds_between, pids_cpu_ticks, system_busy_ticks
from bench.workload import Workload

WRK = os.environ.get("WRK", "/usr/bin/wrk")


@dataclass
class Measurement:
    case: str                  # e.g. "create", "list", "update", "bare"
    target: str                # e.g. "sqlite", "postgres", "bare-asgi"
    tool: str                  # "wrk" or "rate"
    duration_s: float
    requests: int
    req_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    loadgen_cpu_s: float
    db_cpu_s: float = 0.0      # PostgreSQL backends serving the server (0 for SQLite: it runs in-process)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def cpu_us_per_req(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")

    @property
    def cpu_us_per_req_with_db(self) -> float:
        return (self.server_cpu_s + self.db_cpu_s) / self.requests * 1e6 if self.requests else float("nan")

    @property
    def server_cores(self) -> float:
        return self.server_cpu_s / self.duration_s if self.duration_s else float("nan")

    @property
    def non_2xx(self) -> int:
        return sum(c for s, c in self.statuses.items() if not s.startswith("2"))

    @property
    def other_cores(self) -> float:
        """CPU used on the machine by anything but the server and the load generator (noise)."""
        return self.extra.get("other_cores", float("nan"))

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(cpu_us_per_req=self.cpu_us_per_req, cpu_us_per_req_with_db=self.cpu_us_per_req_with_db,
                 server_cores=self.server_cores, non_2xx=self.non_2xx)
        return d


DbPids = Callable[[], list[int]]


def _wait_with_rusage(proc: subprocess.Popen, timeout: float) -> float:
    """Wait for ``proc`` and return its user+sys CPU seconds (kills it after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise RuntimeError(f"load generator {proc.args[0]} overran its time and was killed")
        time.sleep(0.02)


def saturate(workload: Workload, server: Server, *, target: str, duration: float, threads: int = 2,
             connections: int = 64, timeout_s: int = 10, script_dir: Path, db_pids: DbPids | None = None) -> Measurement:
    """One wrk run at ``-t{threads} -c{connections} -d{duration}``; moves a create workload's start."""
    script_dir.mkdir(parents=True, exist_ok=True)
    script = script_dir / f"{target}-{workload.name}-{workload.start}.lua"
    script.write_text(workload.lua(threads))
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", f"--timeout={timeout_s}s", "-s", str(script),
            server.base_url + (workload.path if "{id}" not in workload.path else "/")]
    db0 = pids_cpu_ticks(db_pids()) if db_pids else {}
    before, busy0, t0 = server.cpu(), system_busy_ticks(), time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wrk_cpu = _wait_with_rusage(proc, duration + 60)
    after, busy1, wall = server.cpu(), system_busy_ticks(), time.monotonic() - t0
    db_cpu = cpu_seconds_between(db0, pids_cpu_ticks(db_pids())) if db_pids else 0.0
    server_cpu = cpu_seconds_between(before, after)
    other = ((busy1 - busy0) / CLOCK_TICKS - server_cpu - wrk_cpu - db_cpu) / wall
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err}\n{out}")
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}\n{err}")
    data = json.loads(line[len("BENCHJSON "):])
    workload.advance_after_wrk(threads, [int(n) for n in data["issued_per_thread"]])
    dur = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return Measurement(
        case=workload.name, target=target, tool="wrk", duration_s=dur, requests=data["requests"],
        req_s=data["requests"] / dur if dur else 0.0, p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000,
        p99_ms=lat["p99"] / 1000, max_ms=lat["max"] / 1000, server_cpu_s=server_cpu,
        loadgen_cpu_s=wrk_cpu, db_cpu_s=db_cpu, statuses=data["statuses"], errors=data["errors"],
        extra={"connections": connections, "threads": threads, "other_cores": max(0.0, other)},
    )


def constant_rate(workload: Workload, server: Server, *, target: str, rate: float, duration: float,
                  warmup: float, connections: int = 64, script_dir: Path, db_pids: DbPids | None = None) -> Measurement:
    """One open-loop run of ``bench/ratedriver.py`` at ``rate`` requests per second."""
    script_dir.mkdir(parents=True, exist_ok=True)
    spec_path = script_dir / f"{target}-{workload.name}-rate-{workload.start}.json"
    spec = {"workload": {k: v for k, v in asdict(workload).items()}, "host": "127.0.0.1", "port": server.port,
            "rate": rate, "duration": duration, "warmup": warmup, "connections": connections}
    spec_path.write_text(json.dumps(spec))
    db0 = pids_cpu_ticks(db_pids()) if db_pids else {}
    before, busy0, t0 = server.cpu(), system_busy_ticks(), time.monotonic()
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "ratedriver.py"), str(spec_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=str(REPO))
    driver_cpu = _wait_with_rusage(proc, warmup + duration + 90)
    after, busy1, wall = server.cpu(), system_busy_ticks(), time.monotonic() - t0
    db_cpu = cpu_seconds_between(db0, pids_cpu_ticks(db_pids())) if db_pids else 0.0
    server_cpu = cpu_seconds_between(before, after)
    other = ((busy1 - busy0) / CLOCK_TICKS - server_cpu - driver_cpu - db_cpu) / wall
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"rate driver failed ({proc.returncode}): {err}\n{out}")
    data = json.loads(out.strip().splitlines()[-1])
    workload.advance(int(rate * warmup) + int(rate * duration))
    lat = data["latency_ms"]
    # Server CPU covers warm-up + measured span; per request it is divided by everything sent.
    sent = int(rate * warmup) + int(rate * duration)
    return Measurement(
        case=workload.name, target=target, tool="rate", duration_s=duration, requests=data["completed"],
        req_s=data["completed"] / duration, p50_ms=lat["p50"], p90_ms=lat["p90"], p99_ms=lat["p99"],
        max_ms=lat["max"], server_cpu_s=server_cpu * data["completed"] / max(sent, 1),
        loadgen_cpu_s=driver_cpu, statuses=data["statuses"], db_cpu_s=db_cpu * data["completed"] / max(sent, 1),
        errors={"unfinished": data["unfinished"], "lost_in_flight": data.get("lost_in_flight", 0)},
        extra={"target_rate": rate, "offered_rate": data["offered_rate"], "dispatch_lag_ms": data["dispatch_lag_ms"],
               "max_queue": data["max_queue"], "driver_cpu_s": data["driver_cpu_s"], "wall_s": wall,
               "warmup_statuses": data["warmup_statuses"],
               "connections": connections, "other_cores": max(0.0, other), "p999_ms": lat["p999"]},
    )
