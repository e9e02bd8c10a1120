"""Kiosk fixtures: a kiosk on mock pins and a stand-in collector that records and acks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from kiosk import wire
from kiosk.clock import FakeClock
from kiosk.config import settings_from_dict
from kiosk.publisher import OfflinePublisher
from kiosk.service import Kiosk
from kiosk.simulate import fake_gpio_panel
from tests.conftest import wait_for

PINS = (17, 27, 22, 23)


class AckingCollector:
    """Subscribes like a collector; records every batch; acks when ``acking`` is on."""

    def __init__(self, port: int, *, acking: bool = True) -> None:
        self.acking = acking
        # When set, every status is answered with an ack carrying this time (a collector's "at");
        # None answers none, as a collector older than the time-in-acks addition.
        self.time_now = None
        self.batches: list[wire.RatingBatch] = []
        self.snapshots: dict[str, bytes] = {}
        self.statuses: list[dict] = []
        self.acks_sent: list[str] = []
        self._lock = threading.Lock()
        self.topics = wire.Topics()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-collector", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: [c.subscribe(f, qos=1) for f in self.topics.collector_filters()]
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        ref = self.topics.parse(message.topic)
        with self._lock:
            if ref.kind == "ratings":
                batch = wire.decode_batch(message.payload, topic_kiosk=ref.kiosk)
                self.batches.append(batch)
                if self.acking:
                    ids = [r.id for r in batch.ratings]
                    self.acks_sent.extend(ids)
                    client.publish(self.topics.acks(ref.kiosk), wire.encode_ack(ids), qos=1)
            elif ref.kind == "snapshots":
                self.snapshots[ref.rating_id] = message.payload
                if self.acking:
                    client.publish(self.topics.acks(ref.kiosk), wire.encode_ack([], [ref.rating_id]), qos=1)
            elif ref.kind == "status":
                status = wire.decode_status(message.payload)
                self.statuses.append(status)
                if self.time_now is not None and status["state"] == "online":
                    answer = wire.encode_ack(status=status.get("probe"), at=self.time_now())
                    client.publish(self.topics.acks(ref.kiosk), answer, qos=1)

    @property
    def ratings(self) -> list[wire.Rating]:
        with self._lock:
            return [r for b in self.batches for r in b.ratings]

    def unique(self) -> dict[str, wire.Rating]:
        return {r.id: r for r in self.ratings}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def collector(broker) -> Iterator[AckingCollector]:
    stand_in = AckingCollector(broker.port)
    yield stand_in
    stand_in.close()


def kiosk_settings(tmp_path: Path, port: int, **sections):
    doc = {
        "kiosk_id": "k-vb-q1",
        "counter": "vb-q1",
        "data_dir": str(tmp_path / "kiosk"),
        "mqtt": {"host": "127.0.0.1", "port": port},
        "panel": {"pins": list(PINS), "lockout_s": 5, "debounce_s": 0.0},
        "outbox": {"ack_timeout_s": 2, "status_interval_s": 60},
    }
    for name, values in sections.items():
        doc.setdefault(name, {}).update(values)
    return settings_from_dict(doc, base_dir=tmp_path)


class KioskRig:
    """A real Kiosk on mock pins, driven by the test instead of a thread loop."""

    def __init__(self, settings, *, camera=None, clock=None, connect=True, installer=None) -> None:
        self.panel, self.factory = fake_gpio_panel(settings.panel.pins)
        self.clock = clock or FakeClock()
        self.kiosk = Kiosk(
            settings=settings,
            panel=self.panel,
            camera=camera,
            clock=self.clock,
            publisher=None if connect else OfflinePublisher(),
            installer=installer,
        )
        self.kiosk.start()

    def press(self, button: int, *, then_advance_s: float = 6.0) -> None:
        pin = self.factory.pin(PINS[button - 1])
        pin.drive_low()
        pin.drive_high()
        self.kiosk.run_once(timeout_s=1.0)
        self.clock.advance(then_advance_s)

    def pump(self, until, timeout_s: float = 10.0) -> bool:
        def step():
            self.kiosk.run_once(timeout_s=0.02)
            return until()

        return wait_for(step, timeout_s)

    def close(self) -> None:
        self.kiosk.close()


@pytest.fixture
def rig_factory(tmp_path, broker):
    made: list[KioskRig] = []

    def make(**kwargs):
        sections = kwargs.pop("sections", {})
        rig = KioskRig(kiosk_settings(tmp_path, broker.port, **sections), **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()
