"""The journal's cost per create measured in one process: CPU time, journal on and off.

Under wrk (``bench/journal_cost.py``) the figure is the one the target names, but on a shared
machine other jobs move it by more than the journal's share. Here the app runs in this process
(``create_app`` in emulator mode, SQLite in a temporary directory, the ASGI lifespan driven by
hand) and takes create requests as ASGI calls, without HTTP: the work measured is the service's
own - the wire, the endpoint, the store - as CPU time of this process (``time.process_time``),
which other processes on the machine disturb far less than wall-clock throughput. Two apps, journal
on and off, take batches of creates in turn; the report gives the median CPU per create of each
and their paired ratio.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from bench.seed import phone_email, user_email
from bench.workload import CREATE_BODY


class InProcessApp:
    """``create_app`` running in this process, its lifespan started; ``create(k)`` sends create k."""

    def __init__(self, data_dir: Path, journal: bool):
        from sipphones.api.app import create_app
        from sipphones.config import load_settings

        self.settings = load_settings(data_dir=str(data_dir), emulator=True, journal=journal,
                                      admin_token="bench-operator-token-0123456789")
        self.app = create_app(self.settings)
        self.token = ""
        self._lifespan: asyncio.Task | None = None
        self._to_app: asyncio.Queue = asyncio.Queue()
        self._from_app: asyncio.Queue = asyncio.Queue()

    async def start(self, users: int) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._lifespan = asyncio.create_task(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {message}")
        created = await self.app.sipphones.emulator.fresh_account(unlimited=True)
        accounts = self.app.sipphones.accounts
        for n in range(users):
            await accounts.create_user(created["account_id"], user_email("c", n))
        self.token = created["access_token"]

    async def stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._lifespan

    async def create(self, k: int) -> int:
        body = orjson.dumps({**CREATE_BODY, "user_email": phone_email("c", k)})
        headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {self.token}".encode()),
                   (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v2/sip_phones", "raw_path": b"/v2/sip_phones", "root_path": "",
                 "query_string": b"", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        sent = iter([{"type": "http.request", "body": body, "more_body": False}])
        status = 0

        async def receive():
            return next(sent, {"type": "http.disconnect"})

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await self.app(scope, receive, send)
        return status


async def measure(rounds: int, batch: int) -> dict[str, list[float]]:
    """CPU µs per create of each side, one figure per round (the sides alternate who goes first)."""
    root = Path(tempfile.mkdtemp(prefix="sipphones-bench-journal-inproc-"))
    users = (rounds + 1) * batch // 10 + 1     # ten phones per user (bench/seed.py's addresses)
    sides = {"journal-on": InProcessApp(root / "on", True), "journal-off": InProcessApp(root / "off", False)}
    for app in sides.values():
        await app.start(users)
    out: dict[str, list[float]] = {name: [] for name in sides}
    next_k = {name: 0 for name in sides}
    try:
        for r in range(rounds + 1):              # round 0 warms up and is not counted
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                app, k0 = sides[name], next_k[name]
                started = time.process_time()
                for k in range(k0, k0 + batch):
                    status = await app.create(k)
                    if status != 201:
                        raise RuntimeError(f"{name}: create {k} answered {status}")
                spent = time.process_time() - started
                next_k[name] = k0 + batch
                if r:
                    out[name].append(spent / batch * 1e6)
    finally:
        for app in sides.values():
            await app.stop()
    return out


def report(out: dict[str, list[float]]) -> float:
    """Prints the figures; returns the median paired ratio on/off."""
    on, off = out["journal-on"], out["journal-off"]
    paired = [a / b for a, b in zip(on, off)]
    print(f"in-process CPU per create (no HTTP; {len(on)} round(s)):")
    print(f"  journal-on  {statistics.median(on):6,.0f} µs [{min(on):,.0f}-{max(on):,.0f}]")
    print(f"  journal-off {statistics.median(off):6,.0f} µs [{min(off):,.0f}-{max(off):,.0f}]")
    ratio = statistics.median(paired)
    print(f"  journal-on / journal-off CPU per create: {ratio:.3f} (rounds: {', '.join(f'{x:.3f}' for x in paired)});"
          f" the journal's share {(1 - 1 / ratio) * 100:+.1f} % of a create's CPU")
    return ratio


def run(rounds: int, batch: int) -> float:
    return report(asyncio.run(measure(rounds, batch)))
