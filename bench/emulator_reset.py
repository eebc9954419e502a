"""What a clean state per test costs with the emulator: reset and a fresh account.

    .venv/bin/python bench/emulator_reset.py            # 200 rounds per operation (~1 minute)
    .venv/bin/python bench/emulator_reset.py --smoke    # 20 rounds (the bench/tests smoke)

Issue 14's target: a reset and a per-test fresh account in at most 20 ms each. One
``sipphones serve --emulator --seed`` (SQLite, a seed of 3 accounts with 20 users and 20 phones
each, as ``sipphones.testing.EmulatorServer`` starts it for the pytest plugin) is driven over
HTTP by a keep-alive client (``sipphones.testing.Control``), timing each call end to end:

* ``health``          GET  /_sipphones/v1/health: the round trip with no work (the baseline);
* ``fresh account``   POST /_sipphones/v1/accounts (account, one user, app, token);
* ``reset account``   POST /_sipphones/v1/reset {"account_id"} of a fresh account with 5 phones;
* ``reset all``       POST /_sipphones/v1/reset with 5 fresh accounts of 5 phones besides the seed
                      (the untimed set-up between rounds restores that state);
* ``per-test cycle``  what the plugin's ``sipphones`` fixture does around a test: a fresh account,
                      then clearing the fault rules, the clock, and resetting the account;
* ``CLI set-up``      (a few rounds) the way without an emulator: ``sipphones accounts create`` and
                      ``sipphones apps create`` as subprocesses, then a token.

Printed per operation: median and p95 in ms [min-max], and the median's ratio to ``health``'s
median measured in the same run. Exit status 1 when a median misses the 20 ms target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from sipphones.testing import EmulatorServer  # noqa: E402

TARGET_MS = 20.0
PHONE = {"user_name": "1001", "authorization_name": "1001", "password": "s3cret", "domain": "sip.example.com",
         "register_server": "192.0.2.10", "proxy_server": "192.0.2.10", "transport_protocol": "UDP", "voice_mail": "1"}


def write_seed(path: Path, accounts: int = 3, per_account: int = 20) -> None:
    lines = ["seed: 1", "accounts:"]
    for a in range(accounts):
        lines += [f"  - name: Seeded {a}", "    plan: business", "    users:"]
        lines += [f"      - {{email: u{i}@a{a}.example.com}}" for i in range(per_account)]
        lines += ["    apps:", f"      - {{client_secret: seeded-secret-{a}-0123456789}}", "    phones:"]
        for i in range(per_account):
            fields = ", ".join(f'{k}: "{v}"' for k, v in PHONE.items())
            lines.append(f"      - {{user_email: u{i}@a{a}.example.com, {fields}}}")
    path.write_text("\n".join(lines) + "\n")


def account_with_phones(control, http: httpx.Client, phones: int = 5):
    account = control.fresh_account(users=[f"p{i}@example.com" for i in range(phones)], unlimited=True)
    for i in range(phones):
        r = http.post("/v2/sip_phones", headers=account.headers, json={"user_email": f"p{i}@example.com", **PHONE})
        assert r.status_code == 201, r.text
    return account


def timed(fn, rounds: int, setup=lambda: None) -> list[float]:
    out = []
    for _ in range(rounds):
        arg = setup()
        start = time.perf_counter()
        fn(arg)
        out.append((time.perf_counter() - start) * 1000)
    return out


def cli_setup(server: EmulatorServer) -> None:
    env = {"SIPPHONES_DATA_DIR": str(server.data_dir), "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "sipphones", *a], env=env, check=True,  # noqa: E731
                                    capture_output=True, text=True, timeout=60).stdout
    account_id = json.loads(run("accounts", "create", "--name", "CLI account", "--plan", "pro", "--json"))["id"]
    app = json.loads(run("apps", "create", "--account", account_id, "--json"))
    client_id, secret = app["client_id"], app["client_secret"]
    r = httpx.post(f"{server.url}/oauth/token", params={"grant_type": "account_credentials", "account_id": account_id},
                   auth=(client_id, secret))
    assert r.status_code == 200, r.text


def report(name: str, ms: list[float], base: float) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    med = statistics.median(ms)
    return (f"{name:<16} median {med:7.2f} ms  p95 {p95:7.2f} ms  [{ms[0]:.2f}-{ms[-1]:.2f}]  "
            f"x{med / base:5.1f} health  (n={len(ms)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--cli-rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="20 rounds, 1 CLI round")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.cli_rounds = 20, 1
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        seed = Path(tmp) / "seed.yaml"
        write_seed(seed)
        with EmulatorServer(seed=seed, data_dir=Path(tmp) / "data") as server:
            control = server.control
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for _ in range(5):  # warm both paths
                    control.health()
                    control.reset(control.fresh_account().account_id)

                def cycle(_):
                    account = control.fresh_account()
                    control.faults.clear()
                    control.clock.reset()
                    control.reset(account.account_id)

                def busy(_=None):
                    for _ in range(5):
                        account_with_phones(control, http)

                results = {
                    "health": timed(lambda _: control.health(), args.rounds),
                    "fresh account": timed(lambda _: control.fresh_account(users=["a@example.com"]), args.rounds),
                    "reset account": timed(lambda a: control.reset(a.account_id), args.rounds,
                                           lambda: account_with_phones(control, http)),
                    "reset all": timed(lambda _: control.reset(), max(5, args.rounds // 10), busy),
                    "per-test cycle": timed(cycle, args.rounds),
                }
                control.reset()
                results["CLI set-up"] = timed(lambda _: cli_setup(server), args.cli_rounds)
    base = statistics.median(results["health"])
    print(f"emulator reset and fresh accounts, over HTTP (seed: 3 accounts x 20 users and phones); "
          f"target <= {TARGET_MS:g} ms")
    for name, ms in results.items():
        print(report(name, ms, base))
    missed = [n for n in ("fresh account", "reset account", "reset all")
              if statistics.median(results[n]) > TARGET_MS]
    cli = statistics.median(results["CLI set-up"])
    print(f"per-test cycle vs CLI set-up: {cli / statistics.median(results['per-test cycle']):.0f}x faster")
    print("verdict: " + ("within target" if not missed else f"MISSED: {', '.join(missed)}"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
