"""Monitors sharing one fleet through PostgreSQL (``sipphones.monitor.fleet``), against a real
kamailio and a real PostgreSQL: three monitors divide the phones; one killed, its phones are taken
over and its bindings removed within 30 s; a fourth joins and takes its share without a phone
registered twice at once; SIGTERM hands phones over. The registrar's location table is read
throughout by a sampler, so a phone holding two bindings for long cannot pass unseen."""

from __future__ import annotations

import signal
import threading
import time

from tests.fleet.fleetstore import add_phones, keepers, postgres_store
from tests.monitor.running import start_monitor, wait_for
from tests.monitor.store import Server

USERS = [f"u{n:04d}" for n in range(60)]
EXPIRES = 120      # long: a dead monitor's binding must be removed by its successor, not expire
ROUND = EXPIRES / 2  # one registration round (the refresh interval)


class Sampler(threading.Thread):
    """Reads every phone's binding count from kamailio about three times a second and keeps, per
    phone, the longest stretch during which it had two bindings or more."""

    def __init__(self, kamailio, users):
        super().__init__(daemon=True)
        self.kamailio, self.users = kamailio, users
        self.since: dict[str, float] = {}
        self.longest: dict[str, float] = {}
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            counts = self.kamailio.binding_counts(self.users)
            now = time.monotonic()
            self.samples += 1
            for user, n in counts.items():
                if n > 1:
                    start = self.since.setdefault(user, now)
                    self.longest[user] = max(self.longest.get(user, 0.0), now - start)
                else:
                    self.since.pop(user, None)
            self.halt.wait(0.3)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def _one_binding_each(kamailio, avoid: set[str] = frozenset()):
    table = kamailio.all_contacts()
    ok = all(len(table.get(u, [])) == 1 and table[u][0] not in avoid for u in USERS)
    return table if ok else None


def _monitor_names(store) -> dict[str, int]:
    """monitor name -> phones it keeps (live leases only)."""
    out: dict[str, int] = {}
    for name, alive in keepers(store).values():
        if name and alive:
            out[name] = out.get(name, 0) + 1
    return out


def _name(m) -> str:
    return f":{m.proc.pid}"


def _kept_by(store, m) -> int:
    return sum(n for name, n in _monitor_names(store).items() if name.endswith(_name(m)))


def test_three_monitors_share_a_fleet_survive_a_kill_a_join_and_a_handover(tmp_path, pg_url, kamailio_factory,
                                                                           monitors):
    kam = kamailio_factory(address="127.0.0.1")
    store = postgres_store(tmp_path, pg_url)
    phones = add_phones(store, USERS, Server(kam.server("UDP"), "UDP"))
    args = ("--expires", str(EXPIRES), "--stop-timeout", "5")
    sampler = Sampler(kam, USERS)
    sampler.start()
    try:
        ms = []
        for _ in range(3):
            ms.append(start_monitor(store, *args))
            monitors.append(ms[-1])
        # the three divide the fleet: every phone one binding, kept by one live monitor
        wait_for("three monitors keeping every phone", lambda: len(_monitor_names(store)) == 3
                 and sum(_monitor_names(store).values()) == len(phones), timeout=40)
        wait_for("one binding per phone", lambda: _one_binding_each(kam), timeout=20)
        # a monitor that joined last takes its share over the next heartbeats (release before
        # acquire), so the shares settle a few seconds after every phone has a keeper
        wait_for("the fleet divided roughly in thirds (rendezvous hashing)",
                 lambda: len(shares := _monitor_names(store)) == 3 and min(shares.values()) >= len(phones) // 6
                 and sum(shares.values()) == len(phones), timeout=30)

        # one killed outright: within 30 s every phone has one binding again, none of the victim's
        victim = ms[0]
        table = kam.all_contacts()
        victim_keeps = {pid for pid, (name, _) in keepers(store).items() if name.endswith(_name(victim))}
        assert victim_keeps
        by_id = {p.id: p.user_name for p in phones}
        victim_contacts = {table[by_id[pid]][0] for pid in victim_keeps}
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        killed_at = time.monotonic()
        wait_for("the victim's phones taken over, its bindings removed",
                 lambda: _one_binding_each(kam, victim_contacts), timeout=30, interval=0.2)
        takeover = time.monotonic() - killed_at
        assert takeover <= 30.0
        wait_for("two monitors keeping every phone", lambda: len(_monitor_names(store)) == 2
                 and sum(_monitor_names(store).values()) == len(phones), timeout=10)

        # a fourth joins: it takes its share, every phone still one binding
        joiner = start_monitor(store, *args)
        monitors.append(joiner)
        wait_for("the joiner keeping its share", lambda: _kept_by(store, joiner) >= len(phones) // 6
                 and sum(_monitor_names(store).values()) == len(phones), timeout=30)
        wait_for("one binding per phone after the join", lambda: _one_binding_each(kam), timeout=20)

        # SIGTERM: the leaving monitor un-registers and releases; the others take its phones at once
        leaving = ms[1]
        leaving_keeps = _kept_by(store, leaving)
        assert leaving_keeps > 0
        table = kam.all_contacts()
        leaving_contacts = {table[by_id[pid]][0] for pid, (name, _) in keepers(store).items()
                            if name.endswith(_name(leaving))}
        code, took = leaving.terminate(signal.SIGTERM, timeout=30)
        assert code == 0, leaving.log()
        assert f"stopped; {leaving_keeps} binding(s) removed" in leaving.stdout(), leaving.stdout()
        handed_at = time.monotonic()
        wait_for("the leaver's phones taken over", lambda: _one_binding_each(kam, leaving_contacts)
                 and sum(_monitor_names(store).values()) == len(phones), timeout=20, interval=0.2)
        handover = time.monotonic() - handed_at
        assert handover < 10.0  # a heartbeat of the others (lease / 3) and the registrations, no lease wait
    finally:
        sampler.stop()
    assert sampler.samples > 20
    # never two bindings of one phone for as long as a registration round (the killed monitor's
    # binding is removed by its successor's first REGISTER; handovers release before acquiring)
    worst = max(sampler.longest.values(), default=0.0)
    assert worst < ROUND, sampler.longest
    print(f"takeover after SIGKILL {takeover:.1f} s, handover after SIGTERM {handover:.1f} s, "
          f"longest double binding {worst:.1f} s")
