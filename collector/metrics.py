"""``/metrics`` in the Prometheus text format: what an operator graphs and alerts on.

Ingest figures come from the ingestor's committed counts (so a rolled-back batch never shows),
kiosk figures from the store at scrape time, HTTP figures from a middleware. Names start with
``sat_``; counters end in ``_total``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiosk import wire


class IngestCollector(Collector):
    """Reads the ingestor's counts when Prometheus scrapes."""

    def __init__(self, ingestor: Any, batch_latency: Histogram) -> None:
        self.ingestor = ingestor
        self.batch_latency = batch_latency

    def collect(self) -> Iterator[Metric]:
        counts = self.ingestor.handler.counts
        for name, value, text in (
            ("sat_ingest_messages", counts.messages, "MQTT messages handled and committed"),
            ("sat_ratings_stored", counts.stored, "ratings stored (new)"),
            ("sat_ratings_duplicate", counts.duplicates, "ratings received again and acked again, not stored"),
            ("sat_snapshots_stored", counts.snapshots, "pictures stored"),
            ("sat_statuses", counts.statuses, "kiosk status messages taken"),
            ("sat_acks_published", counts.acks, "ack messages published to kiosks"),
            ("sat_ingest_batches", counts.batches, "ingest transactions committed"),
            ("sat_store_errors", counts.outages, "commits that failed because the store was unwell"),
            ("sat_retained_cleared", counts.retained_cleared, "ratings and pictures a kiosk sent retained, cleared"),
        ):
            yield CounterMetricFamily(name, text, value=value)
        quarantined = CounterMetricFamily(
            "sat_quarantined", "ratings and messages put in quarantine, by reason", labels=["reason"]
        )
        for reason, n in sorted(counts.by_reason.items()):
            quarantined.add_metric([reason], n)
        yield quarantined
        health = self.ingestor.health()
        yield GaugeMetricFamily(
            "sat_broker_connected", "1 when ingest is connected to the broker", value=health["broker"]
        )
        yield GaugeMetricFamily(
            "sat_ingest_paused", "1 while ingest is paused by a store outage", value=1 if health["outage"] else 0
        )


class KioskCollector(Collector):
    """Kiosks online and the oldest backlog any kiosk reports, from the stored statuses."""

    def __init__(self, statuses: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterable[Metric]:
        try:
            statuses = self.statuses()
        except Exception:  # the store is down: /readyz says so; metrics stay answerable
            return []
        online = sum(1 for s in statuses.values() if s.get("state") == "online")
        backlog = sum(int((s.get("backlog") or {}).get("ratings") or 0) for s in statuses.values())
        oldest_s = 0.0
        now = datetime.now(UTC)
        for status in statuses.values():
            oldest = (status.get("backlog") or {}).get("oldest_at")
            if oldest:
                try:
                    oldest_s = max(oldest_s, (now - wire.parse_time(oldest)).total_seconds())
                except wire.WireError:
                    continue
        return [
            GaugeMetricFamily("sat_kiosks_known", "kiosks that have sent a status", value=len(statuses)),
            GaugeMetricFamily("sat_kiosks_online", "kiosks whose last status says online", value=online),
            GaugeMetricFamily("sat_kiosk_backlog_ratings", "unacked ratings the kiosks report", value=backlog),
            GaugeMetricFamily(
                "sat_kiosk_oldest_backlog_seconds",
                "age of the oldest unacked rating any kiosk reports (0: none or unknown)",
                value=max(0.0, oldest_s),
            ),
        ]


class Metrics:
    """One registry per app, so tests and several apps in one process do not share figures."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "sat_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "sat_http_request_seconds", "HTTP request time by route", ["route"], registry=self.registry
        )
        self.batch_latency = Histogram(
            "sat_ingest_batch_seconds",
            "time to handle and commit one ingest batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def watch_ingest(self, ingestor: Any) -> None:
        self.registry.register(IngestCollector(ingestor, self.batch_latency))
        ingestor.batch_observers.append(self.batch_latency.observe)

    def text(self) -> bytes:
        """The scrape."""
        return generate_latest(self.registry)

    def watch_kiosks(self, statuses: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self.registry.register(KioskCollector(statuses))

    def observe_request(self, method: str, route: str, status: int, started: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_seconds.labels(route).observe(time.perf_counter() - started)
