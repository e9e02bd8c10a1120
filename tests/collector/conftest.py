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
def settings(tmp_path):
    """Collector settings on a fresh data folder (no broker: port 1 is never used)."""
    return collector_settings(tmp_path, 1)


@pytest.fixture
def ingest_settings(settings, broker):
    from dataclasses import replace

    return replace(settings, mqtt=replace(settings.mqtt, port=broker.port))


@pytest.fixture
def store(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    s = SqliteStore(settings.data_dir / "collector.db")
    s.replace_registry(load_registry(REGISTRY))
    yield s
    s.close()


@pytest.fixture
def ingestor(ingest_settings, store):
    ing = Ingestor(settings=ingest_settings, store=SqliteStore(ingest_settings.data_dir / "collector.db"))
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
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fake-{kiosk_id}", protocol=mqtt.MQTTv5)
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


PASSWORD = "correct horse battery"
# Who may see what in the example province: the admin everything, the inspector Văn Bàn
# district (with Khánh Yên Hạ and Khánh Yên below it), the viewer Sa Pa.
USERS = {
    "admin": ("admin", "10"),
    "vanban": ("inspector", "10.085"),
    "sapa": ("viewer", "10.082"),
    "sapa-inspector": ("inspector", "10.082"),
}


@pytest.fixture
def users(store):
    from collector.accounts import Accounts

    accounts = Accounts(store)
    registry = store.load_registry()
    for name, (role, unit) in USERS.items():
        accounts.add_user(name, PASSWORD, role=role, unit=unit, registry=registry)
    return USERS


@pytest.fixture
def client_for(settings, store, users):
    """A TestClient logged in (HTTP Basic) as one of USERS."""
    from fastapi.testclient import TestClient

    from collector.web import create_app

    app = create_app(settings, store)

    def make(name: str) -> TestClient:
        client = TestClient(app)
        client.auth = (name, PASSWORD)
        return client

    return make
