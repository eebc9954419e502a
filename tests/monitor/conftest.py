"""Fixtures of the monitor tests: a fresh store with one account, and monitors stopped at the end."""

from __future__ import annotations

import pytest

from tests.monitor.running import children, kill
from tests.monitor.store import PhoneStore


@pytest.fixture
def store(tmp_path) -> PhoneStore:
    s = PhoneStore(tmp_path)
    s.account_id = s.account("Monitor account")
    return s


@pytest.fixture
def monitors():
    """Append every started monitor; each (and any worker of it) is killed at the end."""
    started = []
    yield started
    for m in started:
        for pid in children(m.proc.pid):
            kill(pid)
        m.kill()
