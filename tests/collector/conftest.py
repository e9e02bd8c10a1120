"""Collector fixtures: settings, a store on a real SQLite file, a running ingestor, a publisher."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.config import settings_from_dict
from collector.ingest import Ingestor
from collector.registry import load_registry
from collector.store import SqliteStore
from kiosk import wire
from tests.conftest import wait_for

REGISTRY = Path(__file__).resolve().parents[2] / "config" / "registry.example.toml"


def collector_settings(tmp_path: Path, port: int, **ingest):
    return settings_from_dict(
        {
            "data_dir": str(tmp_path / "collector"),
            "registry": str(REGISTRY),
            "mqtt": {"host": "127.0.0.1", "port": port},
            "ingest": {"client_id": "collector-test", "batch_wait_s": 0.05, **ingest},
        },
        base_dir=tmp_path,
    )


@pytest.fixture
def settings(tmp_path, broker):
    return collector_settings(tmp_path, broker.port)


@pytest.fixture
def store(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    s = SqliteStore(settings.data_dir / "collector.db")
    s.replace_registry(load_registry(REGISTRY))
    yield s
    s.close()


@pytest.fixture
def ingestor(settings, store):
    ing = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    ing.start()
    assert wait_for(lambda: ing.connected)
    yield ing
    ing.stop()


class FakeKiosk:
    """Publishes raw payloads as a kiosk would, and records the acks it gets."""

    def __init__(self, port: int, kiosk_id: str = "k-vb-q1") -> None:
        self.kiosk_id = kiosk_id
        self.topics = wire.Topics()
        self.acks: list[wire.Ack] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"fake-{kiosk_id}", protocol=mqtt.MQTTv5
        )
        self.client.on_message = lambda c, u, m: self.acks.append(wire.decode_ack(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(self.topics.acks(kiosk_id), qos=1)
        self.client.loop_start()

    def publish(self, suffix: str, payload: bytes, kiosk: str | None = None) -> None:
        topic = f"sat/v1/k/{kiosk or self.kiosk_id}/{suffix}"
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def acked_ratings(self) -> set[str]:
        return {i for a in self.acks for i in a.ratings}

    def acked_snapshots(self) -> set[str]:
        return {i for a in self.acks for i in a.snapshots}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def fake_kiosk(broker):
    k = FakeKiosk(broker.port)
    yield k
    k.close()
