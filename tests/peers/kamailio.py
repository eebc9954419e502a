"""A real kamailio registrar for the tests: config, user database, start, readiness, inspection.

Users live in an SQLite ``subscriber`` table holding only HA1 = md5(user:realm:password), so no
plaintext password is written anywhere. The realm is the SIP domain (kamailio challenges with the
To domain). ``kamcmd`` talks to the instance over its own control socket to inspect bindings.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .pki import ServerCert
from .procs import ManagedProcess, PeerStartError, free_port

CONFIG = Path(__file__).with_name("kamailio.cfg")
SCHEMA_DIR = Path("/usr/share/kamailio/db_sqlite")


@dataclass(frozen=True)
class SipUser:
    """A digest account: ``username`` is the digest user (a phone's authorization_name)."""

    username: str
    password: str
    domain: str


def write_subscriber_db(path: Path, users: list[SipUser]) -> None:
    """Create kamailio's SQLite schema and insert the users with HA1/HA1B only."""
    con = sqlite3.connect(path)
    try:
        con.executescript((SCHEMA_DIR / "standard-create.sql").read_text())
        con.executescript((SCHEMA_DIR / "auth_db-create.sql").read_text())
        rows = []
        for u in users:
            ha1 = hashlib.md5(f"{u.username}:{u.domain}:{u.password}".encode()).hexdigest()
            ha1b = hashlib.md5(f"{u.username}@{u.domain}:{u.domain}:{u.password}".encode()).hexdigest()
            rows.append((u.username, u.domain, "", ha1, ha1b))
        con.executemany("INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?,?,?,?,?)", rows)
        con.commit()
    finally:
        con.close()


@dataclass
class Kamailio:
    """One running kamailio instance (UDP, TCP and TLS on ``address``)."""

    address: str
    domain: str
    udp_port: int
    tcp_port: int
    tls_port: int
    ctl_socket: Path
    process: ManagedProcess
    cert: ServerCert
    users: list[SipUser] = field(default_factory=list)

    def port(self, transport: str) -> int:
        return {"UDP": self.udp_port, "TCP": self.tcp_port, "TLS": self.tls_port}[transport.upper()]

    def server(self, transport: str) -> str:
        """``host:port`` as a phone's register_server field would carry it."""
        return f"{self.address}:{self.port(transport)}"

    def kamcmd(self, *args: str) -> str:
        result = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl_socket}", *args],
                                capture_output=True, text=True, timeout=10)
        return result.stdout + result.stderr

    def bindings(self, user: str) -> list[dict[str, str]]:
        """The bindings kamailio's location table holds for ``user@domain`` (``ul.lookup``): one
        dict per Contact with kamailio's field names (Address, Expires, Call-ID, CSeq, Socket...)."""
        out = self.kamcmd("ul.lookup", "location", f"{user}@{self.domain}")
        bindings: list[dict[str, str]] = []
        for line in out.splitlines():
            text = line.strip()
            if text.startswith("Contact:"):
                bindings.append({})
            elif bindings and ":" in text and not text.endswith("{") and text != "}":
                key, value = text.split(":", 1)
                bindings[-1][key.strip()] = value.strip()
        return bindings

    def binding_counts(self, users: list[str], timeout: float = 60.0) -> dict[str, int]:
        """How many bindings each of ``users`` has (0: none), by one ``kamcmd`` reading one
        ``ul.lookup`` per line from its standard input (~0.3 ms each), for tables too large for
        ``ul.dump`` (its reply fails above a few thousand addresses of record)."""
        if not users:
            return {}
        commands = "".join(f"ul.lookup location {u}@{self.domain}\n" for u in users)
        result = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl_socket}"], input=commands,
                                capture_output=True, text=True, timeout=timeout)
        # kamcmd prompts "kamcmd> " before each command; the banner precedes the first prompt
        # and an empty prompt follows the last answer.
        answers = result.stdout.split("kamcmd> ")[1:len(users) + 1]
        if len(answers) != len(users):
            raise RuntimeError(f"kamcmd answered {len(answers)} of {len(users)} lookups:\n"
                               f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        counts: dict[str, int] = {}
        for user, answer in zip(users, answers):
            if "AOR not found" in answer:
                counts[user] = 0
            elif f"AoR: {user}\n" in answer:
                counts[user] = answer.count("Contact: {")
            else:
                raise RuntimeError(f"unexpected ul.lookup answer for {user}: {answer[:500]}")
        return counts

    def contacts(self, user: str) -> list[str]:
        """The Contact URIs registered for ``user@domain``."""
        return [b["Address"] for b in self.bindings(user) if "Address" in b]

    def all_contacts(self) -> dict[str, list[str]]:
        """AoR -> registered Contact URIs, for every AoR in the location table (ul.dump)."""
        out = self.kamcmd("ul.dump")
        table: dict[str, list[str]] = {}
        aor = None
        for line in out.splitlines():
            text = line.strip()
            if text.startswith("AoR:"):
                aor = text.split(":", 1)[1].strip()
                table.setdefault(aor, [])
            elif text.startswith("Address:") and aor is not None:
                table[aor].append(text.split(":", 1)[1].strip())
        return {a: c for a, c in table.items() if c}

    def registered_aors(self) -> list[str]:
        out = self.kamcmd("ul.dump", "brief")
        return [line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("AoR:")]

    def stop(self) -> None:
        self.process.stop()


def options_probe(address: str, port: int, transport: str, timeout: float = 0.5) -> int | None:
    """Send one OPTIONS and return the status code of the answer (None if none came)."""
    tag = os.urandom(4).hex()
    proto = transport.upper()
    msg = (f"OPTIONS sip:{address}:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/{proto} 127.0.0.1:9;branch=z9hG4bK{tag};rport\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:probe@{address}>;tag={tag}\r\nTo: <sip:probe@{address}>\r\n"
           f"Call-ID: probe-{tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    kind = socket.SOCK_DGRAM if proto == "UDP" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        try:
            s.connect((address, port))
            s.sendall(msg)
            data = s.recv(65535)
        except OSError:
            return None
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def wait_options_ok(proc: ManagedProcess, address: str, port: int, transport: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise PeerStartError(f"{proc.name} exited:\n{proc.log_tail()}")
        if options_probe(address, port, transport) == 200:
            return
        time.sleep(0.05)
    proc.stop()
    raise PeerStartError(f"{proc.name} did not answer OPTIONS over {transport}:\n{proc.log_tail()}")


def start_kamailio(workdir: Path, *, address: str, domain: str, users: list[SipUser], cert: ServerCert,
                   udp_port: int | None = None, tcp_port: int | None = None,
                   tls_port: int | None = None, min_expires: int = 60,
                   wrapper: tuple[str, ...] = (), kamailio_args: tuple[str, ...] = (),
                   start_timeout: float = 10.0) -> Kamailio:
    """Write the database, pick free ports (unless given), start ``kamailio -DD -E``, wait for its sockets.

    ``wrapper`` runs kamailio under another program (e.g. ``valgrind --tool=callgrind
    --trace-children=yes``), ``kamailio_args`` go before the others (e.g. ``-x tlsf``), and
    ``start_timeout`` bounds each start-up wait (sockets bound, then OPTIONS answered)."""
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "users.sqlite"
    if db.exists():
        db.unlink()
    write_subscriber_db(db, users)
    if udp_port is None and tcp_port is None:
        udp_port = tcp_port = free_port(address)
    udp_port = udp_port or free_port(address, tcp=False)
    tcp_port = tcp_port or free_port(address, udp=False)
    tls_port = tls_port or free_port(address, udp=False, avoid={tcp_port})
    ctl = workdir / "kamailio_ctl"
    env = dict(os.environ)
    env.update(
        KAM_DBURL=f"sqlite:///{db}", KAM_TLS_CERT=str(cert.cert_path), KAM_TLS_KEY=str(cert.key_path),
        KAM_CTL=f"unix:{ctl}", KAM_ADDR=address, KAM_UDP_PORT=str(udp_port), KAM_TCP_PORT=str(tcp_port),
        KAM_TLS_PORT=str(tls_port), KAM_DOMAIN=domain, KAM_MIN_EXPIRES=str(min_expires),
    )
    # kamailio writes a pid file and runtime dir; keep both in the work dir (-P, -Y), never /run.
    argv = [*wrapper, "kamailio", *kamailio_args, "-f", str(CONFIG), "-DD", "-E", "-P", str(workdir / "kamailio.pid"),
            "-Y", str(workdir / "run"), "-w", str(workdir)]
    (workdir / "run").mkdir(exist_ok=True)
    proc = ManagedProcess(f"kamailio@{address}", argv, workdir / "kamailio.log", env=env, cwd=workdir).start()
    proc.wait_bound([("udp", address, udp_port), ("tcp", address, tcp_port), ("tcp", address, tls_port)],
                    timeout=start_timeout)
    # Bound sockets come before the workers finish their start-up: wait for real answers too.
    wait_options_ok(proc, address, udp_port, "udp", timeout=start_timeout)
    wait_options_ok(proc, address, tcp_port, "tcp", timeout=start_timeout)
    return Kamailio(address=address, domain=domain, udp_port=udp_port, tcp_port=tcp_port, tls_port=tls_port,
                    ctl_socket=ctl, process=proc, cert=cert, users=list(users))
