"""The metrics endpoint: real HTTP scrape of the monitor's private registry."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sipphones.monitor.metrics import FAILURE_REASONS, KNOWN_STATES, MetricsServer, MonitorMetrics


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_served_with_state_counts_and_counters():
    counts = {"registered": 7, "failed": 2}
    m = MonitorMetrics(lambda: counts)
    server = MetricsServer(m, "127.0.0.1", 0)
    try:
        m.phones_managed.set(9)
        m.registered(0.004)
        m.registered(0.2)
        m.failed("timeout")
        m.failed_over("timeout")
        m.failed_back()
        m.unregistered(True)
        m.expired()
        s = scrape(server.port)
        assert s[("sipphones_registrations", (("state", "registered"),))] == 7
        assert s[("sipphones_registrations", (("state", "failed"),))] == 2
        for state in KNOWN_STATES:  # every state exported, zero or not
            assert ("sipphones_registrations", (("state", state),)) in s
        assert s[("sipphones_phones_managed", ())] == 9
        assert s[("sipphones_registration_attempts_total", ())] == 3
        assert s[("sipphones_registration_failures_total", (("reason", "timeout"),))] == 1
        for reason in FAILURE_REASONS:
            assert ("sipphones_registration_failures_total", (("reason", reason),)) in s
        assert s[("sipphones_registration_rtt_seconds_count", ())] == 2
        assert s[("sipphones_registration_rtt_seconds_bucket", (("le", "0.005"),))] == 1
        assert s[("sipphones_failovers_total", (("reason", "timeout"),))] == 1
        assert s[("sipphones_failbacks_total", ())] == 1
        assert s[("sipphones_unregistrations_total", (("result", "ok"),))] == 1
        assert s[("sipphones_expirations_total", ())] == 1
        # the gauge follows the live counts at each scrape
        counts["registered"] = 8
        assert scrape(server.port)[("sipphones_registrations", (("state", "registered"),))] == 8
    finally:
        server.close()


def test_two_monitors_do_not_share_series():
    a, b = MonitorMetrics(dict), MonitorMetrics(dict)
    a.failed("timeout")
    sample = ("sipphones_registration_failures_total", {"reason": "timeout"})
    assert a.registry.get_sample_value(*sample) == 1
    assert b.registry.get_sample_value(*sample) == 0
