"""``sipphones monitor --workers N``: one fleet kept registered by N processes.

One CPython process registers a few thousand phones per second and keeps tens of thousands
refreshed on one core (``bench/SIP.md``). A bigger fleet, or a first load that must be quick,
spreads over several processes. Each worker is an ordinary ``sipphones monitor`` process run
with ``--shard K/N``: it keeps only the phones :func:`~sipphones.monitor.reload.shard_of` gives
it (a stable hash of the phone id, so a phone always lands in the same worker, phones created
later included). Workers share nothing but the store: each polls it, registers its phones and
writes their status rows. On PostgreSQL there is no hash shard: each worker is a member of the
fleet the store divides (``monitor.fleet``), like a monitor on another machine.

The :class:`Supervisor` starts the workers, learns from each one's stdout (one JSON object a
line) how many phones it keeps and where its metrics are, serves the *sum* of their metrics on
the operator's ``--metrics-port``, restarts a worker that dies (its phones re-register from the
store; restarts back off from 1 s to 30 s), and on stop sends every worker one SIGTERM (each
un-REGISTERs its phones) and adds up what they report. Workers run in their own session, so a
Ctrl-C in the terminal reaches the supervisor only (a second signal would make a worker exit
without un-REGISTERs); each worker watches its stdin, a pipe from the supervisor, and stops on
its own if the supervisor disappears.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

__all__ = ["Supervisor", "WorkerFailed", "MergedMetrics", "merge_metrics"]

log = logging.getLogger("sipphones.monitor")

RESTART_BACKOFF = (1.0, 30.0)   # first delay, longest delay (doubling per quick death)
STABLE_AFTER = 60.0             # a worker that ran this long restarts after the first delay again


class WorkerFailed(Exception):
    """A worker could not start (its own error is on stderr already)."""


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    phones: int = 0
    metrics_port: int | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_report: dict | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay: float = RESTART_BACKOFF[0]
    reader: asyncio.Task | None = None


class Supervisor:
    """Runs ``argv_for(k)`` for k in 0..n-1 and keeps them running until :meth:`stop`."""

    def __init__(self, n: int, argv_for: Callable[[int], Sequence[str]], *, env: dict[str, str] | None = None,
                 start_timeout: float = 60.0, stop_timeout: float = 30.0):
        self.workers = [Worker(k) for k in range(n)]
        self._argv_for = argv_for
        self._env = env
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._stopping = False
        self._watchers: list[asyncio.Task] = []

    # --- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each keeps its shard; raises :class:`WorkerFailed`."""
        for w in self.workers:
            await self._spawn(w)
        try:
            for w in self.workers:
                await self._wait_ready(w)
        except WorkerFailed:
            await self.stop()
            raise
        self._watchers = [asyncio.create_task(self._watch(w)) for w in self.workers]

    async def _spawn(self, w: Worker) -> None:
        w.ready = asyncio.Event()
        w.metrics_port = None
        w.stopped_report = None
        w.started_at = time.monotonic()
        w.process = await asyncio.create_subprocess_exec(
            *self._argv_for(w.index), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env=self._env, start_new_session=True)
        w.reader = asyncio.create_task(self._read(w, w.process))

    async def _read(self, w: Worker, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            if line.get("ready"):
                w.phones = int(line.get("phones", 0))
                port = line.get("metrics_port")
                w.metrics_port = int(port) if port else None
                w.ready.set()
            elif line.get("stopped"):
                w.stopped_report = line

    async def _wait_ready(self, w: Worker) -> None:
        assert w.process is not None
        ready = asyncio.ensure_future(w.ready.wait())
        died = asyncio.ensure_future(w.process.wait())
        try:
            done, _ = await asyncio.wait({ready, died}, timeout=self.start_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if ready in done and w.ready.is_set():
            died.cancel()
            return
        if died in done:
            raise WorkerFailed(f"worker {w.index + 1} of {len(self.workers)} exited with code "
                               f"{w.process.returncode} before it started")
        died.cancel()
        raise WorkerFailed(f"worker {w.index + 1} of {len(self.workers)} did not start within "
                           f"{self.start_timeout:g} s")

    # --- supervision -------------------------------------------------------------------------

    async def _watch(self, w: Worker) -> None:
        while not self._stopping:
            assert w.process is not None
            code = await w.process.wait()
            if self._stopping:
                return
            ran = time.monotonic() - w.started_at
            if ran >= STABLE_AFTER:
                w.delay = RESTART_BACKOFF[0]
            log.warning("worker %d of %d (pid %d) exited with code %s after %.0f s; restarting it in %g s",
                        w.index + 1, len(self.workers), w.process.pid, code, ran, w.delay)
            await asyncio.sleep(w.delay)
            w.delay = min(RESTART_BACKOFF[1], w.delay * 2)
            if self._stopping:
                return
            w.restarts += 1
            try:
                await self._spawn(w)
                await self._wait_ready(w)
            except (WorkerFailed, OSError) as e:
                log.warning("%s", e)
                continue
            log.info("worker %d of %d restarted (pid %d, %d phones)", w.index + 1, len(self.workers),
                     w.process.pid, w.phones)

    @property
    def phones(self) -> int:
        return sum(w.phones for w in self.workers)

    def metrics_ports(self) -> list[int]:
        return [w.metrics_port for w in self.workers
                if w.metrics_port and w.ready.is_set() and w.process is not None and w.process.returncode is None]

    # --- stop --------------------------------------------------------------------------------

    async def stop(self) -> tuple[int, int]:
        """SIGTERM every worker, wait for them (bounded), return (bindings removed, un-REGISTERs
        failed) as they reported."""
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        live = [w for w in self.workers if w.process is not None and w.process.returncode is None]
        for w in live:
            try:
                w.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        for w in live:
            try:
                await asyncio.wait_for(w.process.wait(), self.stop_timeout)
            except asyncio.TimeoutError:
                log.warning("worker %d did not stop within %g s; killing it", w.index + 1, self.stop_timeout)
                w.process.kill()
                await w.process.wait()
        for w in self.workers:
            if w.reader is not None:
                try:
                    await asyncio.wait_for(w.reader, 2.0)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    w.reader.cancel()
        removed = sum(int((w.stopped_report or {}).get("removed", 0)) for w in self.workers)
        failed = sum(int((w.stopped_report or {}).get("failed", 0)) for w in self.workers)
        return removed, failed


# --- metrics ---------------------------------------------------------------------------------------


def merge_metrics(texts: Iterable[str]) -> list[Metric]:
    """The sum of several Prometheus expositions of the same series (counters, gauges and
    histogram buckets of a fleet's shards all add up)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            sums = values[family.name]
            for s in family.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                sums[key] = sums.get(key, 0.0) + s.value
    out = []
    for name, family in families.items():
        for (sample, labels), value in values[name].items():
            family.add_sample(sample, dict(labels), value)
        out.append(family)
    return out


class MergedMetrics(Collector):
    """A collector that scrapes the workers' endpoints (loopback) and serves their sum, plus
    ``sipphones_monitor_workers`` (workers up)."""

    def __init__(self, ports: Callable[[], list[int]], timeout: float = 2.0):
        self._ports = ports
        self._timeout = timeout

    def collect(self) -> Iterable[Metric]:
        texts = []
        ports = self._ports()
        for port in ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=self._timeout) as r:
                    texts.append(r.read().decode())
            except OSError as e:
                log.warning("scraping worker metrics on port %d failed: %s", port, e)
        yield from merge_metrics(texts)
        up = GaugeMetricFamily("sipphones_monitor_workers", "Worker processes whose metrics were read.")
        up.add_metric([], len(texts))
        yield up

    def describe(self) -> Iterable[Metric]:
        return []


def merged_registry(ports: Callable[[], list[int]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MergedMetrics(ports))
    return registry
