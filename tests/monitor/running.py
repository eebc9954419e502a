"""``sipphones monitor`` as a subprocess for the tests: start, wait for conditions, scrape, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.monitor.store import CLI, PhoneStore
from tests.peers.fixtures import free_port

T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll ``fn`` until it returns something truthy (bounded by count and time)."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(int(timeout / interval) + 2):
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of a metrics endpoint on 127.0.0.1, keyed by (name, sorted labels)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@dataclass
class MonitorProcess:
    proc: subprocess.Popen
    metrics_port: int
    log_path: Path
    out_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def metrics(self) -> dict[tuple[str, tuple], float]:
        return scrape(self.metrics_port)

    def metric(self, name: str, **labels) -> float | None:
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Send ``sig``; return (exit code, seconds it took to exit)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_monitor(store: PhoneStore, *args: str, reload_interval: float = 0.3) -> MonitorProcess:
    port = free_port("127.0.0.1")
    log_path = store.root / f"monitor-{port}.log"
    out_path = store.root / f"monitor-{port}.out"
    with open(log_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen([*CLI, "monitor", "--metrics-port", str(port), "--reload-interval", str(reload_interval),
                                 "--start-rate", "0", *args],
                                env=store.env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    m = MonitorProcess(proc, port, log_path, out_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"monitor exited with {proc.returncode}:\n{m.stdout()}\n{m.log()}")
        return "monitoring" in m.stdout()
    wait_for("the monitor to start", up, timeout=20)
    return m


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def alive(pid: int) -> bool:
    """Running (a zombie is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
