"""Start, wait for and stop the external peer processes (kamailio, sipp, dnsmasq) of the tests.

Every process is started with ``subprocess.Popen`` in its own process group, its output goes to a
log file in the test's temporary directory, readiness means "the sockets it should open are
bound" (read from /proc/net, so no probe traffic disturbs the peer), and stopping kills it by PID
(SIGTERM, then SIGKILL after a bound wait). Nothing here uses a broad kill by name.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel to SIGTERM it if the test process dies, so a
    killed pytest run cannot leave peers behind holding their ports."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class PeerStartError(RuntimeError):
    """A peer did not come up; the message carries the tail of its log."""


def _proc_net_entries(kind: str) -> set[tuple[str, int, str]]:
    """(address, port, state) of every socket in /proc/net/<kind> (tcp, udp, tcp6, udp6)."""
    out: set[tuple[str, int, str]] = set()
    path = Path("/proc/net") / kind
    try:
        lines = path.read_text().splitlines()[1:]
    except FileNotFoundError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        hex_addr, hex_port = parts[1].split(":")
        raw = bytes.fromhex(hex_addr)
        if len(raw) == 4:
            addr = str(ipaddress.IPv4Address(raw[::-1]))
        else:
            # /proc stores IPv6 as four little-endian 32-bit words
            words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
            addr = str(ipaddress.IPv6Address(b"".join(words)))
        out.add((addr, int(hex_port, 16), parts[3]))
    return out


def is_bound(proto: str, host: str, port: int) -> bool:
    """True when a socket is bound to host:port (TCP: listening; UDP: bound)."""
    fam = "6" if ":" in host else ""
    entries = _proc_net_entries(f"{proto}{fam}")
    wanted_state = "0A" if proto == "tcp" else None  # 0A = TCP_LISTEN
    for addr, p, state in entries:
        if p == port and addr in (host, "0.0.0.0", "::") and (wanted_state is None or state == wanted_state):
            return True
    return False


def free_port(host: str, *, udp: bool = True, tcp: bool = True, avoid: set[int] | None = None) -> int:
    """A port currently free on ``host`` for the requested protocols (asked from the kernel)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if avoid and port in avoid:
            continue
        ok = True
        for kind, wanted in ((socket.SOCK_DGRAM, udp), (socket.SOCK_STREAM, tcp)):
            if not wanted:
                continue
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError(f"no free port found on {host}")


@dataclass
class ManagedProcess:
    """One external process owned by a fixture."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)
    _log_file: object = field(default=None, repr=False)

    def start(self) -> "ManagedProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, cwd=self.cwd, start_new_session=True, preexec_fn=_die_with_parent,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_bound(self, sockets: list[tuple[str, str, int]], timeout: float = 10.0) -> None:
        """Wait until every (proto, host, port) is bound; fail with the log if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise PeerStartError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            if all(is_bound(proto, host, port) for proto, host, port in sockets):
                return
            time.sleep(0.02)
        self.stop()
        raise PeerStartError(f"{self.name} did not bind {sockets} within {timeout}s:\n{self.log_tail()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID (the process group we created for it), then SIGKILL; always reaps."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(timeout)
        else:
            # The main process is gone; make sure no child of its group lingers.
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
