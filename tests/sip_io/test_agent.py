"""The long-lived RegistrationAgent against real peers: failover across three servers and
fail-back, refresh, un-REGISTER on stop, re-registration after a lost TCP connection, and many
phones over one socket."""

from __future__ import annotations

import asyncio
import time

import pytest

from sipphones.phones.models import Transport
from sipphones.registration_config import registration_config
from sipphones.sip.events import FailedBack, FailedOver, Registered, RegistrationFailed, Unregistered
from sipphones.sipio.agent import AgentEvent, RegistrationAgent
from tests.peers.fixtures import LOAD_USERS, free_port

from .helpers import fast_policy, header, phone

pytestmark = pytest.mark.peers

UDP, TCP = Transport.UDP, Transport.TCP


async def wait_for(predicate, timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def of(events: list[AgentEvent], kind) -> list:
    return [e.report for e in events if isinstance(e.report, kind)]


@pytest.fixture
async def agent_factory():
    agents = []

    def make(**kw) -> tuple[RegistrationAgent, list[AgentEvent]]:
        events: list[AgentEvent] = []
        kw.setdefault("policy", fast_policy())
        agent = RegistrationAgent(kw.pop("stack", None), on_event=events.append, **kw)  # owns its stack
        agents.append(agent)
        return agent, events

    yield make
    for agent in agents:
        await agent.stop(timeout=3.0)


async def test_three_server_failover_then_fail_back_to_the_first(sipp_factory, kamailio_factory, agent_factory):
    port1 = free_port("127.0.0.1")
    dead = sipp_factory("blackhole", address="127.0.0.1", port=port1)      # server 1: silent
    busy = sipp_factory("busy_503", address="127.0.0.2")                   # server 2: 503 Retry-After 30
    third = kamailio_factory(address="127.0.0.3")                          # server 3: works
    agent, events = agent_factory()
    agent.add(phone((dead.server(), UDP), (busy.server(), UDP), (third.server("UDP"), UDP),
                    user="bob", password="bobpw", phone_id="p"))
    await wait_for(lambda: agent.status("p").registered, 10, "registration on server 3")
    status = agent.status("p")
    assert status.slot == 3 and status.target.startswith("127.0.0.3:") and status.transport == "UDP"
    assert [(f.from_slot, f.to_slot) for f in of(events, FailedOver)] == [(1, 2), (2, 3)]
    assert [(f.slot, f.kind) for f in of(events, RegistrationFailed)][:2] == [(1, "timeout"), (2, "server_error")]
    assert third.contacts("bob")

    # server 1 comes back (a real registrar on the same address and port)
    dead.stop()
    first = kamailio_factory(address="127.0.0.1", udp_port=port1, tcp_port=port1)
    await wait_for(lambda: agent.status("p").slot == 1, 10, "fail-back to server 1")
    assert [(f.from_slot, f.to_slot) for f in of(events, FailedBack)] == [(3, 1)]
    assert first.contacts("bob")
    await wait_for(lambda: third.contacts("bob") == [], 5, "un-REGISTER from the backup")
    # the 503 server asked for 30 s of peace: it was never asked again
    assert len(busy.received_requests()) == 1

    await agent.stop()
    assert first.contacts("bob") == []
    assert {u.slot for u in of(events, Unregistered)} >= {1, 3}


async def test_stop_unregisters_the_binding(kamailio, agent_factory):
    agent, events = agent_factory()
    agent.add(phone((kamailio.server("UDP"), UDP), user="u0150", password="pw0150", phone_id="p"))
    await wait_for(lambda: agent.status("p").registered, 5, "registration")
    bindings = kamailio.bindings("u0150")
    assert len(bindings) == 1 and bindings[0]["Address"].startswith("sip:u0150@127.0.0.1:")
    status = agent.status("p")
    assert status.expires == 60 and status.expires_at > time.time() + 50
    await agent.stop()
    assert kamailio.contacts("u0150") == []
    assert [(u.slot, u.ok) for u in of(events, Unregistered)] == [(1, True)]


async def test_remove_unregisters_one_phone_and_keeps_the_others(kamailio, agent_factory):
    agent, _ = agent_factory()
    agent.add(phone((kamailio.server("TCP"), TCP), user="u0151", password="pw0151", phone_id="a"))
    agent.add(phone((kamailio.server("TCP"), TCP), user="u0152", password="pw0152", phone_id="b"))
    await wait_for(lambda: agent.status("a").registered and agent.status("b").registered, 5, "registrations")
    # both phones share the one TCP connection: same Socket, same connection id at the registrar
    a, b = kamailio.bindings("u0151")[0], kamailio.bindings("u0152")[0]
    assert a["Tcpconn-Id"] == b["Tcpconn-Id"] != "-1"
    await agent.remove("a")
    assert "a" not in agent and kamailio.contacts("u0151") == []
    assert kamailio.contacts("u0152")


async def test_binding_is_refreshed_before_it_expires(kamailio_factory, agent_factory):
    short = kamailio_factory(address="127.0.0.2", min_expires=2)
    agent, events = agent_factory(policy=fast_policy(refresh_margin=1.0))
    p = phone((short.server("UDP"), UDP), user="u0153", password="pw0153")
    agent.add(registration_config(p, expires=2), p.id)
    await wait_for(lambda: len(of(events, Registered)) >= 1, 5, "registration")
    first = int(short.bindings("u0153")[0]["CSeq"])
    await asyncio.sleep(3.2)
    assert len(of(events, Registered)) >= 3          # refreshed about every second
    assert agent.status(p.id).registered
    binding = short.bindings("u0153")
    assert len(binding) == 1 and int(binding[0]["CSeq"]) > first
    assert not of(events, RegistrationFailed)


async def test_lost_tcp_connection_leads_to_a_new_registration(kamailio_factory, agent_factory):
    server = kamailio_factory(address="127.0.0.2")
    agent, events = agent_factory()
    agent.add(phone((server.server("TCP"), TCP), user="u0154", password="pw0154", phone_id="p"))
    await wait_for(lambda: agent.status("p").registered, 5, "registration")
    udp, tcp, tls = server.udp_port, server.tcp_port, server.tls_port
    server.stop()                                    # the registrar restarts: its connection is gone
    await wait_for(lambda: not agent.status("p").registered, 5, "the loss to be noticed")
    again = kamailio_factory(address="127.0.0.2", udp_port=udp, tcp_port=tcp, tls_port=tls)
    await wait_for(lambda: agent.status("p").registered, 10, "re-registration")
    assert again.contacts("u0154")
    assert of(events, RegistrationFailed)


async def test_replace_applies_changed_credentials(kamailio, agent_factory):
    agent, events = agent_factory()
    wrong = phone((kamailio.server("UDP"), UDP), user="u0155", password="nope", phone_id="p")
    agent.add(wrong)
    await wait_for(lambda: of(events, RegistrationFailed), 5, "the rejection")
    assert of(events, RegistrationFailed)[0].kind == "auth_rejected" and not agent.status("p").registered
    assert await agent.replace(wrong.replace(password="pw0155")) is True
    await wait_for(lambda: agent.status("p").registered, 5, "registration with the new password")
    assert await agent.replace(wrong.replace(password="pw0155")) is False   # nothing changed


async def test_many_phones_over_one_udp_socket(kamailio, agent_factory):
    users = LOAD_USERS[:150]
    agent, events = agent_factory(start_rate=1000.0)
    for u in users:
        agent.add(phone((kamailio.server("UDP"), UDP), user=u.username, password=u.password, phone_id=u.username))
    await wait_for(lambda: all(agent.status(u.username).registered for u in users), 15, "150 registrations")
    assert agent.stack.transports.stats.flows_opened == 1
    registered = kamailio.all_contacts()
    assert all(u.username in registered for u in users)
    await agent.stop(timeout=10)
    left = kamailio.all_contacts()
    assert not any(u.username in left for u in users)
    assert len(of(events, Unregistered)) == len(users)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_registrar_options_ping_is_answered(sipp_factory, agent_factory, transport):
    peer = sipp_factory("options_ping", address="127.0.0.2", transport=transport)
    agent, _ = agent_factory()
    agent.add(phone((peer.server(), Transport(transport)), phone_id="p"))
    await wait_for(lambda: agent.status("p").registered, 5, "registration")

    def answered() -> list[str]:
        return [m for m in peer.messages() if m.startswith("SIP/2.0 200") and "OPTIONS" in "".join(header(m, "CSeq"))]

    await wait_for(lambda: answered(), 5, "our 200 to the registrar's OPTIONS")
    assert agent.stack.transports.stats.requests_answered >= 1
    reply = answered()[0]
    assert header(reply, "Via")[0].startswith(f"SIP/2.0/{transport} {peer.address}:{peer.port}")
    assert ";tag=" in header(reply, "To")[0]
