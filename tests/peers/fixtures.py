"""pytest fixtures that start real SIP peers on loopback: kamailio, SIPp scenarios, dnsmasq.

Import them into a conftest with ``from tests.peers.fixtures import *``. Every process is started
by the fixture, its log kept in the test's temporary directory, killed by PID at teardown, and the
part of its log written during a failed test is attached to the failure report.

Addresses: the shared registrar runs on 127.0.0.1 (random free ports, never 5060); failover tests
put their own peers on 127.0.0.2 / 127.0.0.3; the DNS server listens on 127.0.0.153.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .dns import DnsServer, DnsZone, Naptr, Srv, start_dnsmasq
from .kamailio import Kamailio, SipUser, start_kamailio
from .pki import ServerCert, TestCA
from .procs import ManagedProcess, free_port
from .sipp import SippServer, start_sipp

__all__ = [
    "SIP_DOMAIN", "TEST_USERS", "LOAD_USERS", "PeerPki", "SipUser", "DnsZone", "Srv", "Naptr",
    "Kamailio", "SippServer", "DnsServer", "free_port",
    "sip_pki", "kamailio_session", "kamailio", "kamailio_factory", "sipp_factory", "dns_factory",
    "pytest_runtest_makereport",
]

SIP_DOMAIN = "sip.test"
TEST_USERS = [
    SipUser("alice", "alicepw", SIP_DOMAIN),
    SipUser("bob", "bobpw", SIP_DOMAIN),
    # a digest user that differs from the phone's user_name (Cisco-style third-party phone)
    SipUser("carol-auth", "carolpw", SIP_DOMAIN),
]
# u0000..u0199 / pw0000..pw0199 for tests that keep many bindings registered at once
LOAD_USERS = [SipUser(f"u{i:04d}", f"pw{i:04d}", SIP_DOMAIN) for i in range(200)]

_PEERS = pytest.StashKey[list]()
_REPORTED = pytest.StashKey[bool]()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _watch(request: pytest.FixtureRequest, process: ManagedProcess, *extra: tuple[str, Path]) -> None:
    """Remember a peer's log files and where they stood, to show what was written to them
    during the test if it fails (``extra``: more (label, path) pairs, e.g. SIPp's message trace)."""
    files = [(process.name, process.log_path), *extra]
    request.node.stash.setdefault(_PEERS, []).extend((label, path, _size(path)) for label, path in files)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown" or not report.failed or item.stash.get(_REPORTED, False):
        return
    item.stash[_REPORTED] = True  # the hook may be imported by more than one conftest
    for label, path, offset in item.stash.get(_PEERS, []):
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            continue
        if not text.strip():
            continue
        lines = text.splitlines()
        if len(lines) > 200:
            lines = [f"... {len(lines) - 200} earlier lines in {path}"] + lines[-200:]
        report.sections.append((f"peer log: {label} ({path})", "\n".join(lines)))


class PeerPki:
    """The session's trusted test CA, an untrusted one, and certificates issued on demand."""

    def __init__(self, directory: Path):
        self.trusted = TestCA(directory / "trusted", "sipphones test CA")
        self.untrusted = TestCA(directory / "untrusted", "someone else's CA")
        self._issued: dict[tuple, ServerCert] = {}
        self._counter = itertools.count()

    @property
    def ca_file(self) -> Path:
        """The CA bundle a client must be given to trust the test registrars."""
        return self.trusted.cert_path

    def cert(self, *names: str, untrusted: bool = False) -> ServerCert:
        key = (untrusted, names)
        if key not in self._issued:
            ca = self.untrusted if untrusted else self.trusted
            self._issued[key] = ca.issue(f"server{next(self._counter)}", list(names))
        return self._issued[key]


@pytest.fixture(scope="session")
def sip_pki(tmp_path_factory) -> PeerPki:
    return PeerPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def kamailio_session(tmp_path_factory, sip_pki) -> Iterator[Kamailio]:
    k = start_kamailio(tmp_path_factory.mktemp("kamailio"), address="127.0.0.1", domain=SIP_DOMAIN,
                       users=TEST_USERS + LOAD_USERS, cert=sip_pki.cert(SIP_DOMAIN, "127.0.0.1"))
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture
def kamailio(request, kamailio_session) -> Kamailio:
    """The shared registrar on 127.0.0.1 (UDP and TCP on one port, TLS on another), realm sip.test,
    users TEST_USERS + LOAD_USERS from SQLite (HA1 only). Certificate: SAN sip.test + 127.0.0.1."""
    if not kamailio_session.process.alive():
        pytest.fail(f"the shared kamailio died:\n{kamailio_session.process.log_tail()}")
    _watch(request, kamailio_session.process)
    return kamailio_session


@dataclass
class _Factory:
    request: pytest.FixtureRequest
    workdir: Path
    started: list

    def _track(self, peer, *extra: tuple[str, Path]):
        self.started.append(peer)
        _watch(self.request, peer.process, *extra)
        return peer


@pytest.fixture
def kamailio_factory(request, tmp_path, sip_pki) -> Iterator[Callable[..., Kamailio]]:
    """Start extra kamailio instances: ``kamailio_factory(address="127.0.0.2", cert=..., udp_port=...)``.

    The certificate defaults to one for sip.test + the instance's address; pass
    ``cert=sip_pki.cert(...)`` for host-name or trust failures. ``min_expires`` (default 60)
    lets refresh tests ask for bindings of a few seconds."""
    f = _Factory(request, tmp_path / "kamailio", [])
    counter = itertools.count()

    def start(*, address: str = "127.0.0.2", cert: ServerCert | None = None, users: list[SipUser] | None = None,
              udp_port: int | None = None, tcp_port: int | None = None, tls_port: int | None = None,
              min_expires: int = 60) -> Kamailio:
        return f._track(start_kamailio(
            f.workdir / f"{address}-{next(counter)}", address=address, domain=SIP_DOMAIN,
            users=TEST_USERS + LOAD_USERS if users is None else users,
            cert=cert or sip_pki.cert(SIP_DOMAIN, address),
            udp_port=udp_port, tcp_port=tcp_port, tls_port=tls_port, min_expires=min_expires))

    try:
        yield start
    finally:
        for peer in reversed(f.started):
            peer.stop()


@pytest.fixture
def sipp_factory(request, tmp_path) -> Iterator[Callable[..., SippServer]]:
    """Start a SIPp UAS scenario: ``sipp_factory("busy_503", address="127.0.0.2", port=None,
    transport="UDP", variables={"user": "alice", "password": "alicepw"}, init_values=None)``.
    A free port is picked when ``port`` is None."""
    f = _Factory(request, tmp_path / "sipp", [])

    def start(scenario: str, *, address: str = "127.0.0.2", port: int | None = None, transport: str = "UDP",
              variables: dict[str, str] | None = None, init_values: dict[str, str] | None = None) -> SippServer:
        port = port or free_port(address, udp=transport.upper() == "UDP", tcp=transport.upper() == "TCP")
        peer = start_sipp(f.workdir, scenario, address=address, port=port, transport=transport,
                          variables=variables, init_values=init_values)
        return f._track(peer, (f"{peer.process.name} messages", peer.message_log),
                        (f"{peer.process.name} errors", peer.error_log))

    try:
        yield start
    finally:
        for peer in reversed(f.started):
            peer.stop()


@pytest.fixture
def dns_factory(request, tmp_path) -> Iterator[Callable[..., DnsServer]]:
    """Start dnsmasq serving a DnsZone on loopback: ``dns_factory(DnsZone(...), address="127.0.0.153")``;
    the result's ``nameserver`` is the (host, port) to give the resolver."""
    f = _Factory(request, tmp_path / "dns", [])

    def start(zone: DnsZone, *, address: str = "127.0.0.153", port: int | None = None) -> DnsServer:
        return f._track(start_dnsmasq(f.workdir, zone, address=address, port=port))

    try:
        yield start
    finally:
        for peer in reversed(f.started):
            peer.stop()
