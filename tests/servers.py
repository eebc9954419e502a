"""Real server processes for the tests: ``sipphones serve`` on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sipphones.accounts.models import ALL_PERMISSIONS, Plan
from sipphones.accounts.service import AccountService
from sipphones.auth.scopes import DEFAULT_APP_SCOPES
from sipphones.config import load_settings
from sipphones.storage.crypto import PasswordCipher
from sipphones.storage.keys import Keys, load_master_key
from sipphones.storage.store import SqlRepository


def child_processes(pid: int) -> dict[int, str]:
    """The live children of ``pid``: their PIDs and names (``/proc/PID/comm``)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out[int(name)] = stat[stat.index("(") + 1:stat.rindex(")")]
    return out


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (no such process, or a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def serve_workers(supervisor: int) -> list[int]:
    """The worker processes of a ``serve --workers N`` supervisor: its children but the
    multiprocessing resource tracker and the WAL checkpoint process (also a fresh interpreter while
    it starts: its command line names it)."""
    out = []
    for pid, name in child_processes(supervisor).items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if name != "sipphones-wal" and b"resource_tracker" not in cmdline and b"storage.checkpoints" not in cmdline:
            out.append(pid)
    return sorted(out)


def wait_for(what: str, check, timeout: float = 20.0):
    """``check()``'s first true value, polled until ``timeout``; AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running ``sipphones serve``; ``admin`` creates accounts, users and apps in its store."""

    database_url: str
    data_dir: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw) -> httpx.Client:
        kw.setdefault("verify", False)  # plain HTTP on loopback: skip loading the CA bundle (~45 ms a client)
        return httpx.Client(base_url=self.base_url, timeout=10, **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(database_url: str, data_dir: Path, *, port: int | None = None, workers: int = 1,
                 extra_env: dict | None = None, extra_args: list[str] | None = None,
                 start_timeout: float = 20) -> ServerProcess:
    port = port or free_port()
    env = dict(os.environ)
    env.update({"SIPPHONES_DATABASE_URL": database_url, "SIPPHONES_DATA_DIR": str(data_dir)})
    env.pop("SIPPHONES_REDIS_URL", None)
    env.update(extra_env or {})
    log_path = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sipphones", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), *(extra_args or [])],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    server = ServerProcess(database_url, data_dir, port, proc, log_path, env)
    deadline = time.monotonic() + start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")


def start_sqlite_server(data_dir: Path, **kw) -> ServerProcess:
    """``start_server`` on a fresh SQLite file inside ``data_dir``."""
    return start_server(f"sqlite:///{data_dir / 'sipphones.db'}", data_dir, **kw)


@dataclass
class Credentials:
    account_id: str
    client_id: str
    client_secret: str


class Admin:
    """Operator actions straight on the server's store (as the CLI does, in-process and fast)."""

    def __init__(self, database_url: str, data_dir: Path):
        self.settings = load_settings(database_url=database_url, data_dir=str(data_dir))
        self.keys = Keys.derive(load_master_key("", data_dir))

    @asynccontextmanager
    async def service(self):
        repo = SqlRepository.from_url(self.settings.resolved_database_url(), PasswordCipher(self.keys.sip_password))
        try:
            yield AccountService(repo), repo
        finally:
            await repo.close()

    def run(self, coro_fn):
        async def go():
            async with self.service() as (svc, repo):
                return await coro_fn(svc, repo)
        return asyncio.run(go())

    def account(self, *, plan: Plan = Plan.PRO, integration: bool = True, unlimited: bool = True,
                users: tuple[str, ...] = ("alice@example.com",), scopes=DEFAULT_APP_SCOPES,
                permissions=ALL_PERMISSIONS, name: str = "Test account") -> Credentials:
        async def go(svc: AccountService, repo):
            acc = await svc.create_account(name, plan, sip_phone_integration=integration, unlimited=unlimited)
            for email in users:
                await svc.create_user(acc.id, email, "Test", email.split("@")[0])
            app = await svc.create_app(acc.id, "test app", tuple(scopes), tuple(permissions))
            return Credentials(acc.id, app.app.client_id, app.client_secret)
        return self.run(go)

    def app(self, account_id: str, scopes=DEFAULT_APP_SCOPES, permissions=ALL_PERMISSIONS) -> Credentials:
        async def go(svc: AccountService, repo):
            app = await svc.create_app(account_id, "another app", tuple(scopes), tuple(permissions))
            return Credentials(account_id, app.app.client_id, app.client_secret)
        return self.run(go)

    def update_account(self, account_id: str, **changes) -> None:
        self.run(lambda svc, repo: svc.update_account(account_id, **changes))

    def add_user(self, account_id: str, email: str, first: str = "", last: str = "") -> None:
        self.run(lambda svc, repo: svc.create_user(account_id, email, first, last))


def get_token(client: httpx.Client, creds: Credentials) -> str:
    r = client.post("/oauth/token", auth=(creds.client_id, creds.client_secret),
                    data={"grant_type": "account_credentials", "account_id": creds.account_id})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]
