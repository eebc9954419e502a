"""bench/sip_registrar_cost.py: the callgrind reading it relies on, and the kamailio start options
(tests/peers/kamailio.py ``wrapper``, ``kamailio_args``) it runs the registrar with."""

from __future__ import annotations

import collections
from pathlib import Path
from bench.sip_registrar_cost import dumped, parse
from tests.peers.fixtures import SIP_DOMAIN, TEST_USERS
from tests.peers.kamailio import options_probe, start_kamailio

# Name compression, a call's inclusive cost on the line after calls= (not the caller's own),
# a file (fl=) switch, and a compressed callee named on first use only.
DUMP = """# callgrind format
version: 1
part: 3
desc: Trigger: dump phase2-engine
positions: line
events: Ir
summary: 1000

ob=(1) /usr/sbin/kamailio
fl=(1) ???
fn=(10) receive_msg
0 100
cfn=(11) qm_malloc
calls=2 0
0 400
cfn=(11)
calls=3 0
0 250
0 7

fn=(11)
0 650

fl=(2) ???
fn=(12) parse_via
0 40
cfn=(10)
calls=1 0
0 1
"""


def test_parse_counts_own_cost_and_calls_not_call_costs(tmp_path):
    path = tmp_path / "callgrind.out.1.3"
    path.write_text(DUMP)
    excl: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    parse(path, excl, calls)
    assert excl == {"receive_msg": 107, "qm_malloc": 650, "parse_via": 40}
    assert calls == {"qm_malloc": 5, "receive_msg": 1}
    assert dumped(tmp_path, "phase2-engine") == [path]
    assert dumped(tmp_path, "phase2") == []


def test_kamailio_runs_under_a_wrapper_with_extra_arguments(tmp_path, sip_pki):
    k = start_kamailio(tmp_path / "kam", address="127.0.0.1", domain=SIP_DOMAIN, users=TEST_USERS,
                       cert=sip_pki.cert(SIP_DOMAIN, "127.0.0.1"),
                       wrapper=("env", "SIPPHONES_WRAPPED=1"), kamailio_args=("-x", "tlsf"), start_timeout=30.0)
    try:
        argv = Path(f"/proc/{k.process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[:4] == [b"kamailio", b"-x", b"tlsf", b"-f"]   # env exec'd kamailio in place
        environ = Path(f"/proc/{k.process.pid}/environ").read_bytes().split(b"\0")
        assert b"SIPPHONES_WRAPPED=1" in environ
        assert options_probe("127.0.0.1", k.udp_port, "udp") == 200
    finally:
        k.stop()
