"""Monitors sharing a fleet through PostgreSQL: the issue's target, measured.

    .venv/bin/python -m bench.fleet_share [--phones 3000] [--monitors 3] [--hold 30]

On a kamailio of its own (one digest user per phone) and a fresh database on the machine's
PostgreSQL (``SIPPHONES_TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``):

1. **Baseline, in the same run**: one ``sipphones monitor`` alone keeps every phone; how long
   until every phone has one binding, and its CPU while it holds them (``--hold`` s, bindings of
   60 s: a refresh per phone about every 30 s).
2. **The fleet**: that monitor stopped, ``--monitors`` monitors started one after the other (the
   later ones join a running fleet); how long until the phones are divided with one binding
   each; each monitor's CPU while holding its share.
3. **A kill**: one monitor SIGKILLed; seconds until every phone has exactly one binding again
   and none of the dead monitor's (target: 30 s, ratio printed).

Kamailio's location table is sampled throughout (``binding_counts``, one kamcmd per round);
the longest stretch during which any phone had two bindings is printed against one
registration round (30 s). Phones per monitor core = phones held / CPU share while holding
(a CPU-second per second is one core), for this refresh rate.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fleet.fleetstore import keepers  # noqa: E402
from tests.monitor.store import CLI  # noqa: E402
from tests.peers.kamailio import SipUser, start_kamailio  # noqa: E402
from tests.peers.pki import TestCA  # noqa: E402
from tests.pg import fresh_postgres_database  # noqa: E402

EXPIRES = 60
TARGET_TAKEOVER = 30.0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(root: Path, url: str, count: int, server: str):
    """``count`` phones with bench.seed's bulk writers (names ``100000+k``, passwords ``pw-k``),
    pointed at ``server`` over UDP, domain sip.test, bindings of one minute; the store as the tests
    see it (``PhoneStore``) for the status view."""
    import psycopg
    from sqlalchemy.engine import make_url

    from bench import seed as bulk
    from tests.monitor.store import PhoneStore
    from sipphones.config import load_settings

    store = PhoneStore(root)
    store.database_url = url
    store.settings = load_settings(database_url=url, data_dir=str(store.data_dir))
    bulk.prepare_schema(url)
    store.account_id = bulk.provision_account(url, store.data_dir, "Fleet bench").account_id
    users = bulk.seed_users(url, store.account_id, "fleet", (count + len(bulk.VARIANTS) - 1) // len(bulk.VARIANTS))
    bulk.seed_phones(url, store.data_dir, store.account_id, "fleet", users, count)
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
        c.execute("UPDATE sip_phones SET domain = 'sip.test', registration_expire_time = 1, register_server = %s, "
                  "proxy_server = '', transport_protocol = 'UDP'", (server,))
    return store, [str(100000 + k) for k in range(count)]


class Sampler(threading.Thread):
    def __init__(self, kam, users):
        super().__init__(daemon=True)
        self.kam, self.users = kam, users
        self.since: dict[str, float] = {}
        self.longest = 0.0
        self.last: dict[str, int] = {}
        self.samples = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                counts = self.kam.binding_counts(self.users, timeout=60)
            except Exception:  # noqa: BLE001 - one failed read: try again
                continue
            now = time.monotonic()
            self.last = counts
            self.samples += 1
            for u, n in counts.items():
                if n > 1:
                    self.longest = max(self.longest, now - self.since.setdefault(u, now))
                else:
                    self.since.pop(u, None)
            self.halt.wait(0.2)


def start(store, log_dir: Path, *args: str) -> subprocess.Popen:
    n = len(list(log_dir.glob("monitor-*.log")))
    err = open(log_dir / f"monitor-{n}.log", "wb")
    return subprocess.Popen([*CLI, "monitor", "--expires", str(EXPIRES), "--reload-interval", "5",
                             "--stop-timeout", "20", *args], env=store.env, stdout=subprocess.DEVNULL,
                            stderr=err, stdin=subprocess.DEVNULL)


def wait(what: str, fn, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def all_once(sampler: Sampler, users) -> bool:
    c = sampler.last
    return len(c) == len(users) and all(v == 1 for v in c.values())


def hold_cpu(pids: list[int], seconds: float) -> list[float]:
    before = [cpu_seconds(p) for p in pids]
    time.sleep(seconds)
    return [(cpu_seconds(p) - b) / seconds for p, b in zip(pids, before)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--phones", type=int, default=3000)
    ap.add_argument("--monitors", type=int, default=3)
    ap.add_argument("--hold", type=float, default=30.0)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sipphones-fleet-bench-"))
    ca = TestCA(root / "pki", "sipphones fleet bench CA")
    kam = start_kamailio(root / "kamailio", address="127.0.0.1", domain="sip.test",
                         users=[SipUser(str(100000 + k), f"pw-{k}", "sip.test") for k in range(a.phones)],
                         cert=ca.issue("kamailio", ["sip.test", "127.0.0.1"]))
    url, drop = fresh_postgres_database(os.environ.get("SIPPHONES_TEST_POSTGRES_URL",
                                                       "postgresql://postgres@127.0.0.1:5432/test"), "sipphones_fbench")
    procs: list[subprocess.Popen] = []
    sampler = Sampler(kam, [])
    try:
        t = time.monotonic()
        store, users = seed(root / "store", url, a.phones, kam.server("UDP"))
        sampler.users = users
        print(f"seeded {a.phones} phones in {time.monotonic() - t:.1f} s")
        sampler.start()

        # 1. baseline: one monitor alone
        t = time.monotonic()
        solo = start(store, root)
        procs.append(solo)
        wait("one monitor to bind every phone", lambda: all_once(sampler, users), 300)
        solo_up = time.monotonic() - t
        time.sleep(2)
        (solo_cpu,) = hold_cpu([solo.pid], a.hold)
        solo.send_signal(signal.SIGTERM)
        solo.wait(60)
        wait("the solo monitor's bindings removed", lambda: sum(sampler.last.values()) == 0, 60)
        print(f"baseline: 1 monitor bound {a.phones} phones in {solo_up:.1f} s; holding them "
              f"{solo_cpu * 100:.1f} % of a core -> {a.phones / max(solo_cpu, 1e-6):,.0f} phones per monitor core "
              f"(bindings of {EXPIRES} s)")

        # 2. the fleet: monitors started one after the other
        t = time.monotonic()
        ms = []
        for _ in range(a.monitors):
            ms.append(start(store, root))
            procs.append(ms[-1])
            time.sleep(1.0)

        def divided():
            k = keepers(store)
            names = {n for n, alive in k.values() if n and alive}
            return len(names) == a.monitors and all(n for n, alive in k.values()) and all_once(sampler, users)
        wait("the monitors to divide the fleet", divided, 300, every=1.0)
        fleet_up = time.monotonic() - t
        shares: dict[str, int] = {}
        for n, _ in keepers(store).values():
            shares[n] = shares.get(n, 0) + 1
        cpus = hold_cpu([m.pid for m in ms], a.hold)
        print(f"fleet: {a.monitors} monitors divided {a.phones} phones in {fleet_up:.1f} s "
              f"(shares {sorted(shares.values())}); CPU per monitor "
              f"{', '.join(f'{c * 100:.1f} %' for c in cpus)} (sum {sum(cpus) * 100:.1f} % vs "
              f"{solo_cpu * 100:.1f} % alone: ratio {sum(cpus) / max(solo_cpu, 1e-6):.2f})")

        # 3. one killed
        victim = ms[0]
        victims = {pid for pid, (n, _) in keepers(store).items() if n.endswith(f":{victim.pid}")}
        double_before = sampler.longest
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        t, killed_wall = time.monotonic(), time.time()

        def taken_over():
            # every phone kept by a live monitor, the victim's registered again by their new keeper
            # (a status row written after the kill), and then one binding each in a later sample
            if not all(alive for n, alive in keepers(store).values()):
                return False
            rows = store.statuses()
            return all(rows[pid].registered and rows[pid].updated_at > killed_wall for pid in victims)
        wait("the victim's phones registered by their new keepers", taken_over, 120, every=0.2)
        claimed = time.monotonic() - t
        rows = store.statuses()  # the new keepers' own clock: when each row was written, once registered
        registered_at = max(rows[pid].updated_at for pid in victims) - killed_wall
        seen = sampler.samples
        wait("every phone one binding again", lambda: sampler.samples > seen + 1 and all_once(sampler, users),
             120, every=0.2)
        takeover = time.monotonic() - t
        print(f"kill: the victim's {len(victims)} phones registered by new keepers {registered_at:.1f} s after SIGKILL "
              f"(their last status row; seen by this harness at {claimed:.1f} s), "
              f"every phone one binding again at {takeover:.1f} s "
              f"(target {TARGET_TAKEOVER:g} s: ratio {takeover / TARGET_TAKEOVER:.2f})")
        print(f"longest double binding of any phone: {max(sampler.longest, double_before):.1f} s "
              f"(one registration round: {EXPIRES / 2:g} s)")
    finally:
        sampler.halt.set()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        kam.stop()
        drop()
        print(f"logs in {root}")


if __name__ == "__main__":
    main()
