"""Prometheus metrics of the fleet monitor (``--metrics-port``).

Counters and the RTT histogram are updated as the registration machines report; the
per-state gauge is *computed at scrape time* from the monitor's state counts (a custom
collector), so a phone changing state costs two dict updates, not a gauge round trip per
state. Everything lives in the monitor's own ``CollectorRegistry`` (never the process-global
one) so several monitors, or tests, never share series.

Series (all prefixed ``sipphones_``):

=====================================  ===========================================================
``registrations{state}``               phones per registration state (registered, registering,
                                       failed, invalid, ...); every known state is always exported
``phones_managed``                     phones the monitor currently manages
``registration_attempts_total``        REGISTER sequences that ended (success or failure)
``registration_failures_total{reason}``  failed sequences by reason (timeout, auth_rejected, ...)
``registration_rtt_seconds``           round-trip time of the REGISTER transaction that got the 200
``failovers_total{reason}``            moves to a later server set, by why the earlier one was left
``failbacks_total``                    returns to a preferred server set
``expirations_total``                  bindings that ran out before a refresh succeeded
``unregistrations_total{result}``      un-REGISTERs sent on stop/restart/delete (ok, failed)
``reloads_total{result}``              polls of the store for changed phones (ok, error)
``reload_changes_total{change}``       phones added, changed, removed by those polls
``status_writes_total{result}``        rows written to the store's phone_status table (ok, error)
``status_pending``                     status rows waiting to be written
=====================================  ===========================================================
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["MonitorMetrics", "MetricsServer", "RTT_BUCKETS", "KNOWN_STATES", "FAILURE_REASONS"]

RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Exported even at zero so dashboards and alerts see a stable set of series.
KNOWN_STATES = ("idle", "waiting", "resolving", "connecting", "registering", "registered", "failed",
                "invalid", "stopping", "stopped")
FAILURE_REASONS = ("auth_rejected", "not_found", "timeout", "connection_refused", "tls_error", "dns_error",
                   "transport_error", "server_error", "interval_too_brief", "rejected", "declined",
                   "auth_unsupported")


class _StateCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]):
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts = dict(self._counts())  # a copy: the event loop keeps updating the original
        family = GaugeMetricFamily("sipphones_registrations", "Phones per registration state.", labels=["state"])
        for state in sorted(set(KNOWN_STATES) | set(counts)):
            family.add_metric([state], counts.get(state, 0))
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


class MonitorMetrics:
    """The monitor's series, in a private registry. ``state_counts`` is read at each scrape."""

    def __init__(self, state_counts: Callable[[], Mapping[str, int]], registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(_StateCollector(state_counts))
        self.phones_managed = Gauge("sipphones_phones_managed", "Phones the monitor manages.", registry=r)
        self.attempts = Counter("sipphones_registration_attempts", "REGISTER sequences that ended.", registry=r)
        self.failures = Counter("sipphones_registration_failures", "Failed REGISTER sequences by reason.",
                                ["reason"], registry=r)
        self.rtt = Histogram("sipphones_registration_rtt_seconds",
                             "Round-trip time of the REGISTER transaction that got the 200.",
                             buckets=RTT_BUCKETS, registry=r)
        self.failovers = Counter("sipphones_failovers", "Moves to a later server set, by why the earlier one was left.",
                                 ["reason"], registry=r)
        self.failbacks = Counter("sipphones_failbacks", "Returns to a preferred server set.", registry=r)
        self.expirations = Counter("sipphones_expirations", "Bindings that expired before a refresh succeeded.",
                                   registry=r)
        self.unregistrations = Counter("sipphones_unregistrations", "Un-REGISTERs by outcome.", ["result"],
                                       registry=r)
        self.reloads = Counter("sipphones_reloads", "Polls of the store for changed phones.", ["result"], registry=r)
        self.reload_changes = Counter("sipphones_reload_changes", "Phones added, changed or removed by reloads.",
                                      ["change"], registry=r)
        self.status_writes = Counter("sipphones_status_writes", "phone_status rows written.", ["result"], registry=r)
        self.status_pending = Gauge("sipphones_status_pending", "Status rows waiting to be written.", registry=r)
        # Create the labelled children up front so every series exists from the first scrape.
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)
            self.failovers.labels(reason)
        for result in ("ok", "failed"):
            self.unregistrations.labels(result)
        for result in ("ok", "error"):
            self.reloads.labels(result)
            self.status_writes.labels(result)
        for change in ("added", "changed", "removed"):
            self.reload_changes.labels(change)

    # -- what the monitor calls --------------------------------------------------------------

    def registered(self, rtt: float | None) -> None:
        self.attempts.inc()
        if rtt is not None:
            self.rtt.observe(rtt)

    def failed(self, reason: str) -> None:
        self.attempts.inc()
        self.failures.labels(reason).inc()

    def failed_over(self, reason: str) -> None:
        self.failovers.labels(reason).inc()

    def failed_back(self) -> None:
        self.failbacks.inc()

    def expired(self) -> None:
        self.expirations.inc()

    def unregistered(self, ok: bool) -> None:
        self.unregistrations.labels("ok" if ok else "failed").inc()


class MetricsServer:
    """``/metrics`` over HTTP on its own daemon thread (prometheus_client's WSGI server).

    A thread rather than the event loop: a slow scraper never delays a REGISTER, and the
    collectors only read counters (thread-safe in prometheus_client) and copy one small dict.
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int):
        self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port = self._httpd.server_address[1]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


