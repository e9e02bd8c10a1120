"""Collector fixtures: settings, a store on a real SQLite file, a running ingestor, a publisher."""

from __future__ import annotations

import ssl
import threading
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from collector.cli import main as collector_main
from collector.config import settings_from_dict
from collector.fleet import FleetCA
from collector.ingest import Ingestor
from collector.localbroker import LocalBroker, free_port
from collector.registry import load_registry
from collector.store import SqliteStore
from kiosk import wire
from kiosk.mqtt import MqttSettings
from tests.conftest import wait_for

REGISTRY = Path(__file__).resolve().parents[2] / "config" / "registry.example.toml"
ENROLLED_AT = "2020-01-01T00:00:00.000Z"


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
    # Enrolled long before the fixed dates the tests press at, so the time check lets them in.
    s.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    yield s
    s.close()


def open_test_store(kind: str, request: pytest.FixtureRequest, path: Path):
    """A store of either kind, migrated and empty: SQLite at ``path``, or a fresh PostgreSQL database."""
    if kind == "sqlite":
        return SqliteStore(path)
    from collector.pgstore import PostgresStore

    return PostgresStore(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, settings):
    """The store contract: the same test on SQLite and on a real PostgreSQL, registry loaded."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    s = open_test_store(request.param, request, settings.data_dir / "collector.db")
    s.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    yield s
    s.close()


def query(store, sql: str, params=()) -> list[tuple]:
    """Raw SQL for a test's own checks, in either store's placeholder style."""
    if type(store).__name__ == "PostgresStore":
        sql = sql.replace("?", "%s")
    return [tuple(row) for row in store.conn.execute(sql, params).fetchall()]


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


@pytest.fixture
def inspector(client_for):
    """The Văn Bàn inspector, logged in through the form (a session, as in a browser)."""
    client = client_for("vanban")
    client.auth = None
    client.post("/login", data={"username": "vanban", "password": PASSWORD})
    return client


# --- the fleet: a CA, enrolled kiosks and the production broker with TLS ---------------------


@pytest.fixture
def fleet(tmp_path):
    """A collector config, its CA, two enrolled kiosks and the production broker on a free port."""
    registry = tmp_path / "registry.toml"
    registry.write_text(REGISTRY.read_text().split("[[kiosk]]")[0])  # no kiosks yet: enrolment adds them
    port = free_port()
    conf = tmp_path / "collector.toml"
    conf.write_text(
        f'data_dir = "{tmp_path / "data"}"\nregistry = "{registry}"\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
    )

    def cli(*args):
        assert collector_main([*args, "--config", str(conf)]) == 0, args

    cli("registry", "load", str(registry))
    cli("ca", "init", "--broker-host", "127.0.0.1", "--broker-host", "localhost")
    for kiosk, counter in (("k-vb-q1", "vb-q1"), ("k-sp-q1", "sp-q1")):
        cli("kiosk", "enrol", kiosk, "--counter", counter, "--out", str(tmp_path / kiosk), "--broker-port", str(port))
    cli(
        "broker",
        "config",
        "--out",
        str(tmp_path / "broker"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--persistence",
        str(tmp_path / "broker") + "/",
    )
    broker = LocalBroker(
        tmp_path / "broker", port=port, config=tmp_path / "broker" / "mosquitto.conf", own_listener=True
    ).start()
    yield {
        "tmp": tmp_path,
        "port": port,
        "conf": conf,
        "cli": cli,
        "broker": broker,
        "ca": FleetCA(tmp_path / "data" / "fleet"),
    }
    broker.stop()


def mqtt_client_for(port, ca, cert=None, key=None, *, tls=True, name="probe"):
    """Connect and report whether the broker accepted; the client stays running for more checks."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    if tls:
        client.tls_set(
            ca_certs=str(ca), certfile=cert and str(cert), keyfile=key and str(key), cert_reqs=ssl.CERT_REQUIRED
        )
    accepted = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: accepted.set() if not reason.is_failure else None
    client.received = []
    client.on_message = lambda c, u, m: client.received.append(m.topic)
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except (OSError, ssl.SSLError):
        return client, False
    client.loop_start()
    ok = accepted.wait(3) and client.is_connected()
    if ok:
        wait_for(lambda: False, 0.3)  # a revoked or foreign certificate is dropped right after the handshake
        ok = client.is_connected()
    return client, ok


def collector_tls_settings(fleet):
    from collector.config import load_settings

    settings = load_settings(fleet["conf"])
    ca = fleet["ca"]
    return replace(
        settings,
        mqtt=MqttSettings(
            host="127.0.0.1",
            port=fleet["port"],
            tls_ca=str(ca.ca_crt),
            tls_cert=str(ca.folder / "collector.crt"),
            tls_key=str(ca.folder / "collector.key"),
        ),
    )


def read_csv(content: bytes, dialect: str = "excel") -> list[list[str]]:
    """A downloaded CSV's rows: ``excel`` (byte-order mark, «;») or ``data`` (commas, none)."""
    import csv
    import io

    if dialect == "excel":
        assert content.startswith("\ufeff".encode()), content[:20]
        return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    assert not content.startswith("\ufeff".encode()), content[:20]
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))
