"""Tests of the benchmark tools (bench/): they run in CI with the product's tests (pyproject's
``testpaths``) and use the same real peers (kamailio, sipp, dnsmasq on loopback)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("sipphones", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sipphones")

from tests.peers.fixtures import *  # noqa: E402,F401,F403
