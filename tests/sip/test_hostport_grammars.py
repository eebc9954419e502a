"""Two host:port grammars on purpose, held side by side.

* ``sipphones.phones.rules.parse_host`` reads what an admin types into the API (a server of a
  phone): IPv4, ``[IPv6]`` or a DNS name of LDH labels, a port from 1 to 65535 in ASCII digits,
  no all-digit name (a mistyped IPv4 address), names lower-cased for storage. Its errors are
  sentences for the API's ``Validation Failed.`` body.
* ``sipphones.sip.syntax.parse_hostport`` reads what peers send in URIs and Via headers
  (RFC 3261 §25.1 ``hostport``: underscores in names, any port up to 65535 including 0, case
  kept), raises the core's ``BadUri`` and is cached for the hot path.

What the API accepts, the core must read the same way: a configured server becomes a URI
(``Route``) and a target, and comes back in Via ``received``/Contact.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipphones.phones.rules import AddressError, parse_host
from sipphones.sip.errors import BadUri
from sipphones.sip.syntax import parse_hostport

CORPUS = [
    "registrar.example.com", "Registrar.Example.COM", "pbx", "pbx.", "a-b.c-d.example", "192.0.2.1",
    "192.0.2.1:5060", "[2001:db8::1]", "[2001:db8::1]:5061", "[::1]:1", "host:65535", "host:0",
    "host:65536", "host:", ":5060", "01.2.3.4", "256.1.1.1", "1.2.3", "123", "-a.example", "a_b.example",
    "host:5060x", "[2001:db8::1", "[nope]:5060", "2001:db8::1", "host:\u0665\u0660\u0666\u0660",
    "host:\uff15\uff10\uff16\uff10", "h\u00e9st.example", "a" * 64 + ".example", "host:05060",
    "[fe80::1%eth0]:5060", "x" * 254,
]


def _api(text: str):
    try:
        hp = parse_host(text)
    except AddressError:
        return None
    return hp.host, hp.port


def _core(text: str):
    try:
        return parse_hostport(text)
    except BadUri:
        return None


def _agree(text: str) -> None:
    api = _api(text)
    if api is None:
        return  # the API is stricter on purpose (see the module docstring)
    core = _core(text)
    assert core is not None, f"the API accepts {text!r} but the SIP core cannot read it"
    assert (core[0].lower(), core[1]) == api, text


@pytest.mark.parametrize("text", CORPUS)
def test_what_the_api_accepts_the_core_reads_the_same(text):
    _agree(text)


HOST_CHARS = st.sampled_from(list("abcXYZ019-._:[]%") + ["\u0665", "\uff15", "\u00e9", " "])


@settings(max_examples=400, deadline=None)
@given(st.text(HOST_CHARS, min_size=1, max_size=24))
def test_what_the_api_accepts_the_core_reads_the_same_generated(text):
    _agree(text)


def test_the_api_refuses_a_port_in_non_ascii_digits():
    # str.isdigit() is true for Arabic-Indic and full-width digits, and int() reads them: the API
    # stored "host:٥٠٦٠" as a valid server that no SIP peer would write.
    with pytest.raises(AddressError):
        parse_host("host:\u0665\u0660\u0666\u0660")
    with pytest.raises(AddressError):
        parse_host("[2001:db8::1]:\uff15\uff10\uff16\uff10")
