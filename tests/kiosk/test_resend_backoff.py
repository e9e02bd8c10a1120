"""With the collector away, a kiosk re-sends with back-off and each copy expires: against a real
Mosquitto, the same batch goes out a handful of times, not once per timeout, and the broker holds
at most a copy or two for the absent collector — which, back, stores everything exactly once."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt

from collector.ingest import Ingestor
from collector.store import SqliteStore
from tests.collector.conftest import ENROLLED_AT, REGISTRY, collector_settings
from tests.conftest import wait_for


class Spy:
    """Counts every ratings publish the broker routes (a plain, non-shared subscriber)."""

    def __init__(self, port: int) -> None:
        self.publishes = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="spy", protocol=mqtt.MQTTv5)
        self.client.on_message = self._count
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("sat/v1/k/+/ratings", qos=1)
        self.client.loop_start()

    def _count(self, *_: object) -> None:
        with self._lock:
            self.publishes += 1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_resends_back_off_and_stale_copies_expire_while_the_collector_is_away(tmp_path, broker, rig_factory):
    from collector.registry import load_registry

    settings = collector_settings(tmp_path, broker.port)
    settings.data_dir.mkdir(parents=True)
    store = SqliteStore(settings.data_dir / "collector.db")
    store.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    # The collector has a persistent session with the broker, then goes away: the broker queues for it.
    first = Ingestor(settings=settings, store=store)
    first.start()
    assert wait_for(lambda: first.connected)
    first.stop()

    spy = Spy(broker.port)
    rig = rig_factory(sections={"outbox": {"ack_timeout_s": 0.5, "ack_timeout_max_s": 2}})
    try:
        for button in (1, 2, 3):
            rig.press(button)
        started = time.monotonic()
        rig.pump(lambda: time.monotonic() - started > 9, timeout_s=12)
        sent = spy.publishes
        # Fixed 0.5 s timeouts would send about 18 times in 9 s; backing off 0.5, 1, 2, 2, … about 6.
        assert 3 <= sent <= 8, sent
        assert rig.kiosk.publisher.backoff.timeout_s == 2

        collector = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
        collector.start()
        try:
            assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, timeout_s=15)
            assert store.rating_count() == 3
            # Of the copies queued while it was away only the unexpired ones reached the collector.
            assert collector.handler.counts.duplicates <= 2 * 3, collector.handler.counts
            assert rig.kiosk.publisher.backoff.timeout_s == 0.5  # acked: back to the short wait
        finally:
            collector.stop()
    finally:
        spy.close()
        store.close()


def test_each_publish_carries_a_message_expiry(broker, rig_factory):
    seen: list[int | None] = []
    spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="expiry-spy", protocol=mqtt.MQTTv5)
    spy.on_message = lambda c, u, m: seen.append(getattr(m.properties, "MessageExpiryInterval", None))
    spy.connect("127.0.0.1", broker.port)
    spy.subscribe("sat/v1/k/+/ratings", qos=1)
    spy.loop_start()
    try:
        rig = rig_factory(sections={"outbox": {"ack_timeout_s": 4}})
        rig.press(1)
        assert rig.pump(lambda: seen, timeout_s=5)
        assert seen[0] is not None and 0 < seen[0] <= 4
    finally:
        spy.loop_stop()
        spy.disconnect()
