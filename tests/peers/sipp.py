"""SIPp as a fake SIP server: plays one UAS scenario of tests/peers/scenarios on an address.

Debian's SIPp has no TLS, so these peers serve UDP and TCP only. Messages are traced to a file
(``-trace_msg``) so a test can check what the client really sent (for example a
Proxy-Authorization digest, which SIPp's own verifyauth cannot check).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .procs import ManagedProcess

SCENARIOS = Path(__file__).with_name("scenarios")


def scenario_path(name: str) -> Path:
    path = SCENARIOS / (name if name.endswith(".xml") else f"{name}.xml")
    if not path.is_file():
        raise FileNotFoundError(f"no SIPp scenario {path}")
    return path


@dataclass
class SippServer:
    scenario: str
    address: str
    port: int
    transport: str            # "UDP" or "TCP"
    process: ManagedProcess
    message_log: Path
    error_log: Path

    def server(self) -> str:
        """``host:port`` as a phone's register_server field would carry it."""
        return f"{self.address}:{self.port}"

    def messages(self) -> list[str]:
        """Every SIP message SIPp received or sent, as text (from the -trace_msg file)."""
        try:
            text = self.message_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        # SIPp separates entries with a line of dashes followed by a timestamp header line.
        chunks = re.split(r"\n?-{20,}[^\n]*\n", text)
        out = []
        for chunk in chunks:
            lines = chunk.strip("\n").splitlines()
            # drop SIPp's "UDP message received [N] bytes :" style preamble lines
            while lines and not re.match(r"^(SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0)", lines[0]):
                lines.pop(0)
            if lines:
                out.append("\n".join(lines))
        return out

    def received_requests(self, method: str = "REGISTER") -> list[str]:
        return [m for m in self.messages() if m.startswith(f"{method} ")]

    def stop(self) -> None:
        self.process.stop()


def start_sipp(workdir: Path, scenario: str, *, address: str, port: int, transport: str = "UDP",
               variables: dict[str, str] | None = None, init_values: dict[str, str] | None = None) -> SippServer:
    """Start ``sipp -sf scenario`` as a UAS on address:port and wait until its socket is bound.

    ``variables`` become ``-set NAME VALUE`` (the scenario must declare them Global);
    ``init_values`` replace the value of ``<assign assign_to="NAME" value="..."/>`` in a copy of
    the scenario (SIPp's init section overrides -set, and [fill] needs a numeric variable).
    """
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (Debian package sip-tester)")
    transport = transport.upper()
    if transport not in ("UDP", "TCP"):
        raise ValueError("Debian's SIPp serves UDP or TCP only")
    workdir.mkdir(parents=True, exist_ok=True)
    src = scenario_path(scenario)
    path = src
    if init_values:
        text = src.read_text()
        for name, value in init_values.items():
            text, n = re.subn(rf'(<assign assign_to="{re.escape(name)}" value=")[^"]*(")', rf"\g<1>{value}\g<2>", text)
            if n == 0:
                raise ValueError(f"scenario {src.name} has no <assign assign_to=\"{name}\">")
        path = workdir / src.name
        path.write_text(text)
    label = f"{src.stem}@{address}:{port}-{transport.lower()}"
    message_log = workdir / f"{label}.messages.log"
    error_log = workdir / f"{label}.errors.log"
    argv = ["sipp", "-sf", str(path), "-i", address, "-p", str(port),
            "-t", "u1" if transport == "UDP" else "t1", "-nostdin", "-nd",
            "-buff_size", "4194304",
            "-trace_msg", "-message_file", str(message_log),
            "-trace_err", "-error_file", str(error_log)]
    for name, value in (variables or {}).items():
        argv += ["-set", name, str(value)]
    proc = ManagedProcess(f"sipp {label}", argv, workdir / f"{label}.screen.log", cwd=workdir).start()
    proc.wait_bound([("udp" if transport == "UDP" else "tcp", address, port)])
    return SippServer(scenario=src.stem, address=address, port=port, transport=transport, process=proc,
                      message_log=message_log, error_log=error_log)
