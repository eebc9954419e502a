"""Server processes for the benchmark: start on a free loopback port, measure CPU, stop by PID.

CPU is read from procfs (``utime + stime`` of every process in the server's tree), the method of
the reference figures in ``shared/reference/emulators-and-stack.md`` §2: it is steadier than
req/s on this VM and fair across servers that use different numbers of processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, utime+stime ticks, start time) of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(b")") + 2:].split()
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


def process_tree(root: int) -> list[int]:
    """``root`` and every living descendant of it."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_ticks(root: int) -> dict[int, int]:
    """utime+stime (clock ticks) of each process in ``root``'s tree, by pid."""
    out = {}
    for pid in process_tree(root):
        st = _stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def pids_cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime+stime (clock ticks) of the given processes, by pid (gone ones left out)."""
    out = {}
    for pid in pids:
        st = _stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU seconds the tree spent between two snapshots (processes born in between count fully)."""
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS


def system_busy_ticks() -> int:
    """Busy CPU ticks of the whole machine (all cores), from the first line of /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10]) if len(fields) > 9 else 0       # already counted in user/nice
    return sum(fields) - idle - guest


def busy_cores(window: float = 0.5) -> float:
    """Cores busy on the whole machine over ``window`` seconds (anything running, ours included)."""
    t0, b0 = time.monotonic(), system_busy_ticks()
    time.sleep(window)
    return (system_busy_ticks() - b0) / CLOCK_TICKS / (time.monotonic() - t0)


def wait_for_quiet(max_wait: float, threshold: float = 0.3, window: float = 0.5) -> tuple[float, float]:
    """Wait (at most ``max_wait`` s) until the machine is nearly idle between runs; returns
    (seconds waited, busy cores last seen). On a shared machine this keeps other jobs' bursts
    out of the measurements without making the run unbounded."""
    start = time.monotonic()
    busy = busy_cores(window)
    while busy > threshold and time.monotonic() - start + window <= max_wait:
        busy = busy_cores(window)
    return time.monotonic() - start, busy


def rss_mib(root: int) -> float:
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total / 2**20


def http_get(port: int, path: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One GET over a fresh connection (no client library: cold-start timing must not pay for one)."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


@dataclass
class Server:
    """One server process tree started by the benchmark; ``stop`` ends it and every descendant."""

    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    started_at: float
    known_pids: dict[int, int] = field(default_factory=dict)  # pid -> start time (guards PID reuse)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def remember_tree(self) -> None:
        for pid in process_tree(self.pid):
            st = _stat(pid)
            if st is not None:
                self.known_pids.setdefault(pid, st[2])

    def cpu(self) -> dict[int, int]:
        self.remember_tree()
        return tree_cpu_ticks(self.pid)

    def wait_ready(self, path: str = "/healthz", timeout: float = 30.0, poll: float = 0.005) -> float:
        """Poll until ``path`` answers 200; return seconds since launch. Raises with the log on failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = http_get(self.port, path, timeout=5)
                if status == 200:
                    ready = time.monotonic() - self.started_at
                    self.remember_tree()
                    return ready
            except OSError:
                pass
            time.sleep(poll)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout}s:\n{self.log()}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the root, wait; then SIGKILL every process of the tree still alive (by PID)."""
        if self.proc.poll() is None:
            self.remember_tree()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid, started in sorted(self.known_pids.items()):
            st = _stat(pid)
            if pid == self.pid or st is None or st[2] != started:
                continue  # gone (or the PID now belongs to another process)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def launch(name: str, argv: list[str], *, log_dir: Path, env: dict[str, str] | None = None,
           port: int, cwd: Path | None = None) -> Server:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{port}.log"
    full_env = dict(os.environ)
    full_env.pop("SIPPHONES_REDIS_URL", None)
    full_env.update(env or {})
    with open(log_path, "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=str(cwd or REPO),
                                stdin=subprocess.DEVNULL)
    return Server(name, port, proc, log_path, started)
