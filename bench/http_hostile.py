"""Memory and latency of a ``sipphones serve`` worker while a hostile client sends a huge body.

Starts ``serve --workers 1`` (the worker is the serve process itself) on a fresh SQLite store with
the given Python (e.g. another checkout's ``.venv/bin/python`` for a before/after comparison),
creates an account and an app through the CLI, then for each case sends a body of ``--mb``
megabytes as fast as loopback takes it while another connection times list requests. Reports the
worker's RSS before, its peak (VmHWM) and RSS after, what the hostile client got, and the list
requests' latencies during the send. One line of JSON per case.

    .venv/bin/python bench/http_hostile.py --python /path/to/other/.venv/bin/python --mb 500
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cli(python: str, env: dict, *args: str) -> dict:
    out = subprocess.run([python, "-m", "sipphones", *args, "--json"], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


def hostile_send(port: int, head: bytes, total: int, result: dict, pattern: bytes, chunked: bool) -> None:
    chunk = pattern * ((1 << 20) // len(pattern))
    if chunked:  # HTTP chunks of 1 MiB (the framing's bytes not counted in ``total``)
        chunk = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(head)
            while sent < total:
                sent += s.send(chunk[: min(len(chunk), total - sent)])
        except OSError as e:
            result["send_error"] = type(e).__name__
        result["sent_mb"] = round(sent / 2**20, 1)
        result["send_s"] = round(time.monotonic() - start, 2)
        try:
            s.settimeout(30)
            answer = s.recv(4096)
            result["answer"] = answer.split(b"\r\n", 1)[0].decode("latin-1")
            body = answer.partition(b"\r\n\r\n")[2]
            result["answer_body"] = body[:160].decode("latin-1")
        except OSError as e:
            result["answer"] = f"no answer ({type(e).__name__})"


def run_case(python: str, mb: int, case: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SIPPHONES_DATA_DIR=tmp)
        env.pop("SIPPHONES_DATABASE_URL", None)
        acc = cli(python, env, "accounts", "create", "--name", "bench", "--plan", "business", "--unlimited")
        account_id = acc["id"]
        cli(python, env, "users", "create", "--account", account_id, "--email", "alice@example.com")
        app = cli(python, env, "apps", "create", "--account", account_id)
        port = free_port()
        proc = subprocess.Popen([python, "-m", "sipphones", "serve", "--port", str(port), "--workers", "1"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post("/oauth/token", auth=(app["client_id"], app["client_secret"]),
                           params={"grant_type": "account_credentials", "account_id": account_id})
                token = r.json()["access_token"]
                c.headers["Authorization"] = f"Bearer {token}"
                for _ in range(200):  # warm up
                    c.get("/v2/sip_phones/phones")
                rss_before = status_kb(proc.pid, "VmRSS")
                total = mb * 2**20
                if case in ("json", "json-chunked"):
                    length = "Transfer-Encoding: chunked" if case == "json-chunked" else f"Content-Length: {total}"
                    head = (f"POST /v2/sip_phones HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                            f"Content-Type: application/json\r\n{length}\r\n\r\n").encode()
                else:
                    basic = base64.b64encode(b"x:y").decode()
                    head = (f"POST /oauth/token HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {basic}\r\n"
                            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {total}\r\n\r\n"
                            ).encode()
                result: dict = {"case": case, "mb": mb, "python": python}
                sender = threading.Thread(target=hostile_send, args=(port, head, total, result,
                                                                b"a=b&" if case == "oauth" else b"a",
                                                                case == "json-chunked"))
                latencies = []
                failures = 0
                sender.start()
                while sender.is_alive():
                    t0 = time.perf_counter()
                    try:
                        c.get("/v2/sip_phones/phones", timeout=30)
                        latencies.append((time.perf_counter() - t0) * 1000)
                    except httpx.HTTPError:
                        failures += 1
                sender.join()
                time.sleep(2)
                alive = proc.poll() is None
                result.update({
                    "worker_alive": alive,
                    "rss_before_mb": round(rss_before / 1024, 1),
                    "peak_rss_mb": round(status_kb(proc.pid, "VmHWM") / 1024, 1) if alive else None,
                    "rss_after_mb": round(status_kb(proc.pid, "VmRSS") / 1024, 1) if alive else None,
                    "other_requests": len(latencies), "other_failures": failures,
                    "other_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
                    "other_max_ms": round(max(latencies), 1) if latencies else None,
                })
                return result
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # still busy with the hostile body
                proc.kill()
                proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--case", choices=("json", "json-chunked", "oauth", "all"), default="all")
    args = parser.parse_args()
    for case in (("json", "json-chunked", "oauth") if args.case == "all" else (args.case,)):
        print(json.dumps(run_case(args.python, args.mb, case)), flush=True)


if __name__ == "__main__":
    main()
