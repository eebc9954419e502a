"""An open-loop, constant-rate HTTP/1.1 load generator (what wrk2 does; wrk2 is not packaged).

Why not wrk with fewer connections: wrk is closed-loop. Each connection sends its next request
only after the previous answer, so a slow answer delays the requests behind it and they are never
timed ("coordinated omission"); and the offered rate is whatever the server sustains, not a
chosen one. Here request ``i`` is *scheduled* at ``t0 + i / rate`` regardless of earlier answers
and its latency is measured from that scheduled time, so time spent queued behind a slow
request, or waiting for a free connection, counts.

Requests go over a fixed pool of keep-alive connections (like a client's pool). A request whose
time has come while every connection is busy waits in a queue and that wait is part of its
latency. Requests scheduled during ``--warmup`` seconds are sent but not recorded.

Run: ``python bench/ratedriver.py SPEC.json`` where SPEC holds the workload (see
``bench/workload.py``), host, port, rate, duration, warmup and connections. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import collections
import json
import resource
import socket
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import from the repository root, not from bench/ itself.
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import Workload  # noqa: E402


class _Conn(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, driver: "Driver"):
        self.driver = driver
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need: int | None = None
        self.status = 0
        self.scheduled = 0.0
        self.recorded = False
        self.busy = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes, scheduled: float, record: bool) -> None:
        self.scheduled, self.recorded, self.busy = scheduled, record, True
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                self.status = int(head[9:12])
                if b"transfer-encoding: chunked" in head:
                    raise RuntimeError("chunked responses are not supported by the driver")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line.startswith(b"content-length:"):
                        length = int(line[15:])
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            del self.buf[:self.need]
            self.need = None
            self.busy = False
            self.driver.completed(self, self.status)

    def connection_lost(self, exc):
        self.driver.lost(self)


class Driver:
    def __init__(self, workload: Workload, host: str, port: int, rate: float, duration: float, warmup: float,
                 connections: int):
        self.w = workload
        self.host, self.port = host, port
        self.rate, self.duration, self.warmup = rate, duration, warmup
        self.connections = connections
        self.idle: collections.deque[_Conn] = collections.deque()
        self.queue: collections.deque[tuple[bytes, float, bool]] = collections.deque()
        self.latencies: list[float] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.warmup_statuses: collections.Counter[int] = collections.Counter()
        self.sent = 0
        self.done_count = 0
        self.lost_in_flight = 0
        self.max_queue = 0
        self.late_dispatch: list[float] = []
        self.loop = asyncio.get_running_loop()
        self.all_done = asyncio.Event()
        self.total = 0

    async def open(self) -> None:
        for _ in range(self.connections):
            _, conn = await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
            self.idle.append(conn)

    def dispatch(self, data: bytes, scheduled: float, record: bool) -> None:
        if self.idle:
            self.idle.popleft().send(data, scheduled, record)
        else:
            self.queue.append((data, scheduled, record))
            self.max_queue = max(self.max_queue, len(self.queue))
        self.sent += 1

    def completed(self, conn: _Conn, status: int) -> None:
        now = time.perf_counter()
        if conn.recorded:
            self.latencies.append(now - conn.scheduled)
            self.statuses[status] += 1
        else:
            self.warmup_statuses[status] += 1
        self.done_count += 1
        if self.queue:
            conn.send(*self.queue.popleft())
        else:
            self.idle.append(conn)
        if self.done_count + self.lost_in_flight >= self.total:
            self.all_done.set()

    def lost(self, conn: _Conn) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            self.lost_in_flight += 1
            if self.done_count + self.lost_in_flight >= self.total:
                self.all_done.set()

    async def run(self) -> dict:
        await self.open()
        host = f"{self.host}:{self.port}"
        interval = 1.0 / self.rate
        n_warm = int(self.rate * self.warmup)
        self.total = n_warm + int(self.rate * self.duration)
        # Pre-render every request so building them costs nothing on the schedule.
        requests = [self.w.raw_request(i, host) for i in range(self.total)]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        # perf_counter, not loop.time(): uvloop's clock has millisecond resolution.
        t0 = time.perf_counter() + 0.05
        wall0 = time.monotonic()
        for i, data in enumerate(requests):
            due = t0 + i * interval
            now = time.perf_counter()
            if due - now > 0.0005:
                await asyncio.sleep(due - now)
                now = time.perf_counter()
            if i >= n_warm:
                self.late_dispatch.append(max(0.0, now - due))
            self.dispatch(data, due, i >= n_warm)
        send_end = time.perf_counter()
        try:
            await asyncio.wait_for(self.all_done.wait(), timeout=30)
        except asyncio.TimeoutError:
            pass
        wall = time.monotonic() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        lat = sorted(self.latencies)
        late = sorted(self.late_dispatch)

        def pct(values: list[float], p: float) -> float:
            if not values:
                return float("nan")
            return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

        measured_span = (send_end - (t0 + n_warm * interval)) or 1e-9
        return {
            "target_rate": self.rate,
            "offered_rate": (self.total - n_warm) / measured_span,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "connections": self.connections,
            "scheduled": self.total - n_warm,
            "completed": len(lat),
            "unfinished": self.total - self.done_count,
            "lost_in_flight": self.lost_in_flight,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "warmup_statuses": {str(k): v for k, v in sorted(self.warmup_statuses.items())},
            "latency_ms": {k: pct(lat, p) * 1000 for k, p in
                           (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100))},
            "dispatch_lag_ms": {"p50": pct(late, 50) * 1000, "p99": pct(late, 99) * 1000, "max": pct(late, 100) * 1000},
            "max_queue": self.max_queue,
            "driver_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
            "wall_s": wall,
        }


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    workload = Workload(**spec["workload"])

    async def go() -> dict:
        d = Driver(workload, spec["host"], spec["port"], spec["rate"], spec["duration"], spec["warmup"],
                   spec["connections"])
        return await d.run()

    try:
        import uvloop
        result = uvloop.run(go())
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result = asyncio.run(go())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
