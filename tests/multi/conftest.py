"""Several ``sipphones serve`` instances on one PostgreSQL and one Redis (each instance a separate
process on its own port, with its own data directory, as on separate hosts: they share only the
database, Redis and the master key, ``SIPPHONES_SECRET_KEY``), and a Redis of the test's own that
it may stop and start.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from sipphones.storage.database import migrate
from sipphones.storage.keys import Keys
from tests.conftest import POSTGRES_URL
from tests.pg import fresh_postgres_database
from tests.servers import Admin, ServerProcess, free_port, start_server

REDIS_TIMEOUT_MS = 1000   # counting, not failing, is tested with a live Redis (see tests/ratelimit/helpers.py)


@dataclass
class RestartableRedis:
    """A redis-server of the test alone, on a fixed port, which the test may stop (the process
    exits: connections refused) and start again on the same port, empty."""

    dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.client() as c:
                    if c.ping():
                        return
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {(self.dir / 'redis.log').read_text()}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def restartable_redis(tmp_path) -> RestartableRedis:
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.stop()


# A deployment migrates before it starts its instances (and several instances started at once on
# an empty database is a test of its own); the instances' start on a loaded 2-core machine gets
# more than tests/servers.py's default.
START_TIMEOUT = 120


@pytest.fixture
def empty_postgres():
    url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_multi")
    yield url
    drop()


@pytest.fixture
def shared_postgres(empty_postgres):
    migrate(empty_postgres)
    return empty_postgres


def new_secret_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class Deployment:
    """Instances of one deployment: one database, one Redis, one master key."""

    database_url: str
    secret_key: str
    instances: list[ServerProcess]
    admin: Admin


def instance_env(secret_key: str, redis_url: str = "", **extra: str) -> dict:
    env = {"SIPPHONES_SECRET_KEY": secret_key, "SIPPHONES_REDIS_TIMEOUT_MS": str(REDIS_TIMEOUT_MS)}
    if redis_url:
        env["SIPPHONES_REDIS_URL"] = redis_url
    env.update(extra)
    return env


def admin_for(database_url: str, data_dir: Path, secret_key: str) -> Admin:
    admin = Admin(database_url, data_dir)
    admin.keys = Keys.derive(base64.b64decode(secret_key))  # the deployment's key, not a data directory's
    return admin


def start_instances(database_url: str, root: Path, count: int, env: dict) -> list[ServerProcess]:
    out = []
    try:
        for n in range(count):
            out.append(start_server(database_url, root / f"host{n}", extra_env=env, start_timeout=START_TIMEOUT))
    except BaseException:
        for srv in out:
            srv.stop()
        raise
    return out


@pytest.fixture
def deployment(shared_postgres, restartable_redis, tmp_path) -> Deployment:
    """Two instances on a fresh PostgreSQL database and the test's own Redis."""
    key = new_secret_key()
    instances = start_instances(shared_postgres, tmp_path, 2, instance_env(key, restartable_redis.url))
    yield Deployment(shared_postgres, key, instances, admin_for(shared_postgres, tmp_path / "admin", key))
    for srv in instances:
        srv.stop()
