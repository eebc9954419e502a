"""A list page deep in a million phones against the first page (keyset pagination check).

The store is seeded in bulk (``bench/seed.py``), then the server is started on it. The deep page
is reached with a ``next_page_token`` minted by the project's own ``PageTokens`` and the key the
server derives from its data directory, pointing just before the last 100 phones: the page at
depth ~N is a full page with more to follow, so it does the same work as the first page (30 rows
and a new token). The token is checked by reading the page: 30 phones, all after the cursor.

Two figures per page, both as deep / first ratios:
* latency: one keep-alive connection, requests sent one at a time, alternating first and deep
  pages, median of many (what one client paging through a large account sees);
* throughput: wrk ``-c64`` on each page (what the server sustains at that depth).
"""

from __future__ import annotations

import json
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Server
from bench.seed import keys_for
from sipphones.phones.pagination import PageTokens

LIST_PATH = "/v2/sip_phones/phones?page_size=30"


def mint_token(data_dir: Path, account_id: str, after_id: str, page_number: int, ttl: int = 900) -> str:
    return PageTokens(keys_for(data_dir).page_token, ttl).issue(
        account_id=account_id, search=None, after_id=after_id, page_number=page_number, now=time.time())


class KeepAlive:
    """A minimal blocking HTTP/1.1 keep-alive client: sequential latency without client-library cost."""

    def __init__(self, port: int):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, float]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return self.exchange(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{extra}\r\n".encode())

    def exchange(self, request: bytes) -> tuple[int, bytes, float]:
        """Send one raw request; return (status, body, seconds until the whole answer was read)."""
        t0 = time.perf_counter()
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        head = self.buf[:end]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line[15:])
        while len(self.buf) < end + 4 + length:
            self._fill()
        elapsed = time.perf_counter() - t0
        body = self.buf[end + 4:end + 4 + length]
        self.buf = self.buf[end + 4 + length:]
        return int(head.split(b" ", 2)[1]), body, elapsed

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def close(self) -> None:
        self.sock.close()


@dataclass
class DeepPages:
    first_path: str
    deep_path: str
    depth: int           # phones before the deep page


def deep_pages(data_dir: Path, account_id: str, phone_ids: list[str], margin: int = 100) -> DeepPages:
    depth = len(phone_ids) - margin
    token = mint_token(data_dir, account_id, phone_ids[depth - 1], page_number=depth // 30 + 1)
    return DeepPages(LIST_PATH, f"{LIST_PATH}&next_page_token={token}", depth)


def check_pages(server: Server, token: str, pages: DeepPages, phone_ids: list[str]) -> None:
    """Fail loudly unless both pages are full, in id order, and the deep one starts after its cursor."""
    c = KeepAlive(server.port)
    try:
        auth = {"Authorization": f"Bearer {token}"}
        for path, expected_first in ((pages.first_path, phone_ids[0]), (pages.deep_path, phone_ids[pages.depth])):
            status, body, _ = c.get(path, auth)
            if status != 200:
                raise RuntimeError(f"GET {path[:80]}... answered {status}: {body[:300]!r}")
            data = json.loads(body)
            got = [p["phone_id"] for p in data["phones"]]
            if len(got) != 30 or got[0] != expected_first or got != sorted(got) or not data["next_page_token"]:
                raise RuntimeError(f"unexpected page for {path[:80]}...: first={got[:1]} expected {expected_first}, "
                                   f"{len(got)} phones, token={'yes' if data['next_page_token'] else 'no'}")
    finally:
        c.close()


def sequential_latency(server: Server, token: str, pages: DeepPages, *, warmup: int, samples: int) -> dict:
    """Alternate first and deep page on one keep-alive connection; medians in milliseconds."""
    c = KeepAlive(server.port)
    auth = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {"first": [], "deep": []}
    try:
        for i in range(warmup + samples):
            for name, path in (("first", pages.first_path), ("deep", pages.deep_path)):
                status, body, elapsed = c.get(path, auth)
                if status != 200:
                    raise RuntimeError(f"{name} page answered {status}: {body[:200]!r}")
                if i >= warmup:
                    times[name].append(elapsed * 1000)
    finally:
        c.close()

    def stats(v: list[float]) -> dict:
        s = sorted(v)
        return {"median_ms": statistics.median(s), "p90_ms": s[int(0.9 * (len(s) - 1))], "min_ms": s[0], "n": len(s)}

    first, deep = stats(times["first"]), stats(times["deep"])
    return {"first": first, "deep": deep, "ratio": deep["median_ms"] / first["median_ms"]}
