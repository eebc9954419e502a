"""bench/sip_engine.py's "sipp-like-engine" scenario against a real kamailio: ``;rport`` in the
Via, every registration a new binding, and the un-register after each step leaving the location
table as it was (empty here), so the next step's users have no binding either."""

from __future__ import annotations

import pytest

from bench.sip_engine import (
    DOMAIN, FRESH_PREFIX, UAC_REGISTER, UAC_REGISTER_RPORT, like_engine_scenario, run_sipp, run_step,
    unregister_step,
)
from bench.sip_worker import password, user_name
from tests.peers.fixtures import SIP_DOMAIN, SipUser, free_port

USERS = 30

pytestmark = pytest.mark.skipif(any(__import__("shutil").which(t) is None for t in ("kamailio", "sipp", "kamcmd")),
                                reason="needs kamailio, kamcmd and sipp")


def test_the_like_engine_scenario_differs_from_the_original_by_rport_only():
    assert DOMAIN == SIP_DOMAIN
    assert UAC_REGISTER_RPORT.count(";rport;branch=[branch]") == 2
    assert UAC_REGISTER_RPORT.replace(";rport;", ";").split("<scenario", 1)[1] == \
        UAC_REGISTER.split("<scenario", 1)[1].replace('digest auth">', 'digest auth, rport">', 1)


def test_like_engine_steps_create_new_bindings_and_unregister_them(tmp_path, kamailio_factory):
    kam = kamailio_factory(address="127.0.0.1", users=[
        SipUser(user_name(FRESH_PREFIX, i), password(FRESH_PREFIX, i), SIP_DOMAIN) for i in range(USERS)])
    port = free_port("127.0.0.1", tcp=False)
    sc = like_engine_scenario(tmp_path, USERS, port)
    names = [user_name(FRESH_PREFIX, i) for i in range(USERS)]
    assert kam.all_contacts() == {}

    # One step by hand: every registration makes a binding in an empty table, one per user.
    step = run_sipp(tmp_path, kam, sc.scenario, sc.csv, rate=USERS, seconds=1.0, step=1, port=port,
                    calls=sc.calls(USERS, 1.0), label=sc.kind)
    assert (step.successful, step.failed, step.exit_code) == (USERS, 0, 0)
    assert 0 < step.elapsed <= step.wall
    table = kam.all_contacts()
    assert sorted(table) == names
    assert all(c == [f"sip:{u}@127.0.0.1:{port};transport=UDP"] for u, c in table.items())
    assert kam.binding_counts(names[:3] + ["nobody"]) == {**{u: 1 for u in names[:3]}, "nobody": 0}

    # The un-register (Contact: *, Expires: 0, with digest) empties the table again.
    result = unregister_step(tmp_path, kam, sc, USERS, USERS, 1, names)
    assert result["ok"] and result["attempts"][0]["successful"] == USERS
    assert kam.all_contacts() == {} and kam.registered_aors() == []

    # The bench's own steps, twice: each on users without a binding, each leaving none behind.
    for n in (2, 3):
        step, d = run_step(tmp_path, kam, sc, rate=USERS, seconds=1.0, step_no=n)
        assert step.clean and step.successful == USERS
        assert (d["kind"], d["sample"], d["sample_bound_before"], d["sample_bound_after"], d["fresh"]) == \
            ("sipp-like-engine", USERS, 0, USERS, True)
        assert d["unregister"]["ok"]
        assert kam.all_contacts() == {}


def test_a_like_engine_step_registers_at_most_its_users(tmp_path):
    sc = like_engine_scenario(tmp_path, 100, 5999)
    assert sc.calls(10, 5.0) == 50
    assert sc.calls(1000, 5.0) == 100          # never a user twice in one step
    assert sc.csv.read_text().splitlines()[1] == (
        f"{user_name(FRESH_PREFIX, 0)};{password(FRESH_PREFIX, 0)};{DOMAIN};"
        f"[authentication username={user_name(FRESH_PREFIX, 0)} password={password(FRESH_PREFIX, 0)}]")
