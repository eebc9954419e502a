"""The metrics endpoint: real HTTP scrape of the monitor's private registry."""

from sipphones.monitor.metrics import FAILURE_REASONS, KNOWN_STATES, MetricsServer, MonitorMetrics
from tests.monitor.running import scrape


def test_metrics_served_with_state_counts_and_counters():
    counts = {"registered": 7, "failed": 2}
    m = MonitorMetrics(lambda: counts)
    server = MetricsServer(m.registry, "127.0.0.1", 0)
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


def test_workers_metrics_are_served_summed():
    from sipphones.monitor.workers import merged_registry

    a, b = MonitorMetrics(lambda: {"registered": 3}), MonitorMetrics(lambda: {"registered": 4, "failed": 1})
    servers = [MetricsServer(m.registry, "127.0.0.1", 0) for m in (a, b)]
    ports = [s.port for s in servers]
    merged = MetricsServer(merged_registry(lambda: ports + [1]), "127.0.0.1", 0)  # port 1: a worker gone
    try:
        a.phones_managed.set(3)
        b.phones_managed.set(5)
        a.registered(0.004)
        b.registered(0.2)
        b.registered(0.003)
        b.failed("timeout")
        s = scrape(merged.port)
        assert s[("sipphones_registrations", (("state", "registered"),))] == 7
        assert s[("sipphones_registrations", (("state", "failed"),))] == 1
        assert s[("sipphones_phones_managed", ())] == 8
        assert s[("sipphones_registration_attempts_total", ())] == 4
        assert s[("sipphones_registration_failures_total", (("reason", "timeout"),))] == 1
        assert s[("sipphones_registration_rtt_seconds_count", ())] == 3
        assert s[("sipphones_registration_rtt_seconds_bucket", (("le", "0.005"),))] == 2
        assert abs(s[("sipphones_registration_rtt_seconds_sum", ())] - 0.207) < 1e-9
        assert s[("sipphones_monitor_workers", ())] == 2   # the two that answered
    finally:
        for server in (*servers, merged):
            server.close()
