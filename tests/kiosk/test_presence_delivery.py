"""After a broker restart, kiosks that reconnect before the collector publish ratings that reach
nobody (Mosquitto drops the collector's shared subscription). With the collector's presence
status they are re-sent the moment the collector is back, even with the re-send back-off at its
10-minute maximum — on a real Mosquitto, restarted mid-test."""

from __future__ import annotations

import time

from collector.ingest import Ingestor
from collector.registry import load_registry
from collector.store import SqliteStore
from tests.collector.conftest import ENROLLED_AT, REGISTRY, collector_settings
from tests.conftest import wait_for


def test_ratings_published_before_the_collector_returns_are_acked_seconds_after_it_does(
    tmp_path, broker, rig_factory, capsys
):
    settings = collector_settings(tmp_path, broker.port)
    settings.data_dir.mkdir(parents=True)
    store = SqliteStore(settings.data_dir / "collector.db")
    store.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    collector = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    collector.start()
    assert wait_for(lambda: collector.connected)
    # The back-off at its maximum from the start: no timer re-send can happen during this test.
    rig = rig_factory(sections={"outbox": {"ack_timeout_s": 600, "ack_timeout_max_s": 600}})
    rig.press(1)
    assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, 15)

    collector.stop()
    broker.restart()  # the shared subscription is gone; a retained "online" may be stale now
    assert rig.pump(lambda: rig.kiosk.publisher.connected, 15)
    for button in (2, 3, 4):
        rig.press(button)  # published now, to nobody
    rig.pump(lambda: False, 1.0)
    assert rig.kiosk.outbox.backlog().ratings == 3

    back = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    back.start()
    started = time.monotonic()
    try:
        assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, 20)
        took = time.monotonic() - started
        assert store.rating_count() == 4
        assert rig.kiosk.publisher.presence_resends >= 1
        with capsys.disabled():
            print(f"\n3 ratings published in the gap acked {took:.1f} s after the collector started again")
    finally:
        back.stop()
        store.close()


def test_with_two_collectors_one_leaving_leaves_the_status_online(tmp_path, broker):
    import paho.mqtt.client as mqtt

    from kiosk import wire

    settings = collector_settings(tmp_path, broker.port)
    settings.data_dir.mkdir(parents=True)
    store = SqliteStore(settings.data_dir / "collector.db")
    store.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    from dataclasses import replace

    first = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    second_settings = replace(settings, ingest=replace(settings.ingest, client_id="collector-test-2"))
    second = Ingestor(settings=second_settings, store=SqliteStore(settings.data_dir / "collector.db"))
    first.start()
    second.start()
    try:
        assert wait_for(lambda: first.connected and second.connected)
        second.stop()  # publishes "offline"; the first, still there, says "online" again
        seen: list[tuple[str, str]] = []
        watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5)
        watcher.on_message = lambda c, u, m: seen.append(wire.decode_collector_status(m.payload))
        watcher.connect("127.0.0.1", broker.port)
        watcher.subscribe(wire.collector_status_topic(), qos=1)
        watcher.loop_start()
        try:
            assert wait_for(lambda: seen and seen[-1] == ("online", first.session), 5), seen
        finally:
            watcher.loop_stop()
            watcher.disconnect()
    finally:
        first.stop()
        store.close()
