"""A real DNS server for the RFC 3263 tests: dnsmasq on a loopback address and port.

dnsmasq is started with no upstream (``--no-resolv``), no /etc/hosts (``--no-hosts``), bound only
to the given loopback address (``--listen-address`` + ``--bind-interfaces``) and authoritative for
the test zones (``--local=/zone/``), so names it does not know get NXDOMAIN instead of being sent
anywhere. Records are A, AAAA, SRV and NAPTR given by the test.
"""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .procs import ManagedProcess, free_port


@dataclass(frozen=True)
class Srv:
    name: str        # e.g. _sip._udp.example.test
    target: str
    port: int
    priority: int = 10
    weight: int = 10


@dataclass(frozen=True)
class Naptr:
    name: str        # e.g. example.test
    order: int
    preference: int
    flags: str       # "s" -> the replacement is an SRV name
    service: str     # SIP+D2U, SIP+D2T, SIPS+D2T
    replacement: str
    regexp: str = ""


@dataclass
class DnsZone:
    """The records one dnsmasq instance serves."""

    zones: list[str] = field(default_factory=lambda: ["test"])
    hosts: dict[str, list[str]] = field(default_factory=dict)    # name -> IPv4/IPv6 addresses
    srv: list[Srv] = field(default_factory=list)
    naptr: list[Naptr] = field(default_factory=list)
    empty_names: list[str] = field(default_factory=list)          # names that exist with a TXT record only

    def arguments(self) -> list[str]:
        args = [f"--local=/{z}/" for z in self.zones]
        for name, addrs in self.hosts.items():
            for a in addrs:
                ipaddress.ip_address(a)  # fail early on a typo
            args.append(f"--host-record={name},{','.join(addrs)}")
        for s in self.srv:
            args.append(f"--srv-host={s.name},{s.target},{s.port},{s.priority},{s.weight}")
        for n in self.naptr:
            args.append(f"--naptr-record={n.name},{n.order},{n.preference},{n.flags},{n.service},{n.regexp},{n.replacement}")
        for name in self.empty_names:
            args.append(f'--txt-record={name},"exists without addresses"')
        return args


@dataclass
class DnsServer:
    address: str
    port: int
    process: ManagedProcess

    @property
    def nameserver(self) -> tuple[str, int]:
        return (self.address, self.port)

    def stop(self) -> None:
        self.process.stop()


def start_dnsmasq(workdir: Path, zone: DnsZone, *, address: str = "127.0.0.153", port: int | None = None) -> DnsServer:
    if shutil.which("dnsmasq") is None:
        raise RuntimeError("dnsmasq is not installed (Debian package dnsmasq-base)")
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError("the test DNS server must listen on loopback only")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(address)
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--no-poll", "--bind-interfaces", f"--listen-address={address}", "--except-interface=*",
            f"--port={port}", "--pid-file=", "--user=nobody", "--log-queries", "--log-facility=-",
            "--cache-size=0", *zone.arguments()]
    # --except-interface=* plus --listen-address keeps dnsmasq off every non-loopback interface.
    proc = ManagedProcess(f"dnsmasq@{address}:{port}", argv, workdir / f"dnsmasq-{address}-{port}.log").start()
    proc.wait_bound([("udp", address, port), ("tcp", address, port)])
    return DnsServer(address=address, port=port, process=proc)
