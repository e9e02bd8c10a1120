"""/metrics in the Prometheus text format, fed by a real ingestor on a real broker."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from collector.metrics import Metrics
from collector.web import create_app
from kiosk import wire
from tests.conftest import wait_for
from tests.ratings import make_rating


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_metrics_count_stored_duplicate_and_quarantined_ratings_and_requests(ingestor, store, fake_kiosk, settings):
    metrics = Metrics()
    metrics.watch_ingest(ingestor)
    client = TestClient(create_app(settings, store, ingest_health=ingestor.health, metrics=metrics))
    ratings = [make_rating(seq=i + 1) for i in range(3)]
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", ratings))
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", ratings[:1]))
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [make_rating(seq=9, counter="sp-q1")]))
    fake_kiosk.publish("status", b'{"v":1,"kiosk":"k-vb-q1","state":"online","backlog":{"ratings":7,"snapshots":0}}')
    assert wait_for(lambda: ingestor.handler.counts.statuses == 1 and ingestor.handler.counts.quarantined == 1)
    client.get("/healthz")
    figures = scrape(client)
    assert figures[("sat_ratings_stored_total", ())] == 3
    assert figures[("sat_ratings_duplicate_total", ())] == 1
    assert figures[("sat_quarantined_total", (("reason", "counter_mismatch"),))] == 1
    assert figures[("sat_broker_connected", ())] == 1
    assert figures[("sat_ingest_paused", ())] == 0
    assert figures[("sat_kiosks_online", ())] == 1
    assert figures[("sat_kiosk_backlog_ratings", ())] == 7
    assert figures[("sat_ingest_batch_seconds_count", ())] >= 1
    assert figures[("sat_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))] == 1
    assert figures[("sat_acks_published_total", ())] >= 1  # one ack message per kiosk per batch
