"""Raw HTTP/1.1 over a socket, for the tests of the HTTP surface (what httpx would refuse to send)."""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass


@dataclass
class Answer:
    status: int | None          # None: the connection closed without an answer
    headers: dict[str, str]
    body: bytes
    closed: bool                # the server closed the connection after (or instead of) answering

    def json(self):
        return json.loads(self.body)

    def is_zoom_error(self) -> bool:
        if self.status is None or self.status < 400:
            return False
        if not self.headers.get("content-type", "").startswith("application/json"):
            return False
        try:
            body = self.json()
        except ValueError:
            return False
        return isinstance(body, dict) and isinstance(body.get("code"), int) and isinstance(body.get("message"), str)


def connect(port: int, timeout: float = 10) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answer(s: socket.socket, timeout: float = 10) -> Answer:
    """One answer (head and Content-Length body), then whether the server closed the connection."""
    s.settimeout(timeout)
    data = b""
    closed = False
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except ConnectionResetError:
        closed = True
    if b"\r\n\r\n" not in data:
        return Answer(None, {}, data, True)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    try:
        while len(body) < length and not closed:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            body += chunk
    except ConnectionResetError:
        closed = True
    if headers.get("connection", "").lower() == "close" and not closed:
        closed = wait_closed(s, 5)
    return Answer(status, headers, body, closed)


def wait_closed(s: socket.socket, timeout: float) -> bool:
    """True when the server closes ``s`` within ``timeout`` seconds (bytes sent meanwhile are dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            if not s.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def exchange(port: int, raw: bytes, timeout: float = 10) -> Answer:
    with connect(port, timeout) as s:
        try:
            s.sendall(raw)
        except (ConnectionResetError, BrokenPipeError):
            return Answer(None, {}, b"", True)
        return read_answer(s, timeout)


def request(method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
            host: str = "t") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PATCH", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def status_of(raw: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    return int(m.group(1)) if m else None
