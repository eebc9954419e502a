"""The async client's transports side by side: httpx's own pool (httpcore) against aiohttp's
(``httpx-aiohttp``, the default), each on asyncio's event loop and aiohttp also on uvloop (what
``phones import`` runs on), sending user and phone creates through ``AsyncSipPhonesClient``
into a ``sipphones serve`` on SQLite, at several numbers of requests in flight, in interleaved
rounds (so a busy machine hurts both alike). Prints creates a second and each ratio to httpcore
at the same concurrency (creates a second: user and phone creates together).

    .venv/bin/python -m bench.client_transport --rows 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p not in ("", _here)]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench import seed  # noqa: E402
from bench.csv_import import start_serve  # noqa: E402

# (transport, event loop): before (httpx's pool, asyncio's loop), the new transport alone, and now.
CONFIGS = (("httpcore", "asyncio"), ("aiohttp", "asyncio"), ("aiohttp", "uvloop"))


def phone(email: str, n: int) -> dict:
    return {"user_email": email, "user_name": str(100_000 + n), "authorization_name": f"a{n}",
            "password": f"pw-{n:08d}-secret", "domain": "sip.example.com", "server": {"register_server": "10.0.0.1"}}


async def drive(base_url: str, creds: seed.Credentials, transport: str, concurrency: int, rows: int,
                tag: str) -> float:
    """``rows`` user creates, then ``rows`` phone creates, ``concurrency`` in flight; creates a second."""
    from sipphones.client import AsyncSipPhonesClient
    from sipphones.client._core import HTTP_LIMITS

    chosen = httpx.AsyncHTTPTransport(limits=HTTP_LIMITS) if transport == "httpcore" else None
    emails = [f"{tag}-{n}@transport.bench" for n in range(rows)]
    async with AsyncSipPhonesClient(creds.account_id, creds.client_id, creds.client_secret, base_url=base_url,
                                    transport=chosen) as client:
        await client.list_phones(page_size=1)  # the token, and one connection
        t0 = time.perf_counter()
        for make in (lambda i: client.create_user(emails[i]), lambda i: client.create_phone(phone(emails[i], i))):
            todo = iter(range(rows))

            async def worker() -> None:
                for i in todo:
                    await make(i)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return 2 * rows / (time.perf_counter() - t0)


def run(coro, loop: str):
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else None) as runner:
        return runner.run(coro)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concurrency", type=int, action="append", help="requests in flight (repeat; default 8, 32, 64)")
    args = p.parse_args(argv)
    levels = args.concurrency or [8, 32, 64]
    workdir = Path(tempfile.mkdtemp(prefix="sipphones-transport-"))
    url = f"sqlite:///{workdir / 'sipphones.db'}"
    seed.prepare_schema(url)
    creds = seed.provision_account(url, workdir, "transport")
    srv = start_serve("transport", url, workdir, 2)
    got: dict[str, list[float]] = {}
    try:
        for r in range(args.rounds):
            for c in levels:
                for t, loop in CONFIGS:
                    rate = run(drive(f"{srv.base_url}/v2", creds, t, c, args.rows, f"r{r}c{c}{t}{loop}"), loop)
                    got.setdefault(f"{t}+{loop} c={c}", []).append(rate)
                    print(f"round {r + 1} {t}+{loop} {c:3} in flight: {rate:8,.0f} creates/s", file=sys.stderr)
    finally:
        srv.stop()
    summary = {k: statistics.median(v) for k, v in got.items()}
    for c in levels:
        base = summary[f"httpcore+asyncio c={c}"]
        print(f"{c:3} in flight: " + "  ".join(
            f"{t}+{loop} {summary[f'{t}+{loop} c={c}']:7,.0f}/s (x{summary[f'{t}+{loop} c={c}'] / base:.2f})"
            for t, loop in CONFIGS))
    print(json.dumps({"runs": got, "median": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
