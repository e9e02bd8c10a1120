"""Per-kiosk identity enforced by a real Mosquitto running the project's production config:
TLS only, client certificates from the fleet CA, CN = username, the contract's ACL."""

import time
from dataclasses import replace

import pytest

from collector.cli import main as collector_main
from collector.fleet import COLLECTOR_IDENTITY, FleetCA, FleetError
from collector.ingest import Ingestor
from collector.store import SqliteStore
from kiosk import wire
from kiosk.clock import FakeClock
from kiosk.config import load_settings as load_kiosk_settings
from kiosk.ids import uuid7
from tests.collector.conftest import collector_tls_settings, mqtt_client_for
from tests.conftest import wait_for
from tests.kiosk.conftest import KioskRig


def test_enrolment_writes_a_bundle_and_registers_the_kiosk(fleet):
    bundle = fleet["tmp"] / "k-vb-q1"
    assert sorted(p.name for p in bundle.iterdir()) == ["ca.crt", "kiosk.crt", "kiosk.key", "kiosk.toml"]
    assert (bundle / "kiosk.key").stat().st_mode & 0o777 == 0o600
    settings = load_kiosk_settings(bundle / "kiosk.toml")
    assert settings.kiosk_id == "k-vb-q1" and settings.mqtt.tls_cert == str(bundle / "kiosk.crt")
    store = SqliteStore(fleet["tmp"] / "data" / "collector.db")
    assert store.load_registry().kiosks["k-vb-q1"].counter == "vb-q1"
    assert 'id = "k-vb-q1"' in (fleet["tmp"] / "registry.toml").read_text()  # serve reloads the file
    again = [
        "kiosk",
        "enrol",
        "k-vb-q1",
        "--counter",
        "vb-q1",
        "--out",
        str(fleet["tmp"] / "again"),
        "--config",
        str(fleet["conf"]),
    ]
    assert collector_main(again) == 2  # enrolled already: a new card needs --replace
    assert not (fleet["tmp"] / "again").exists()
    old = {i.serial for i in fleet["ca"].active("k-vb-q1")}
    assert collector_main([*again, "--replace"]) == 0
    assert old.isdisjoint({i.serial for i in fleet["ca"].active("k-vb-q1")})  # the old card is revoked


def test_kiosk_delivers_its_own_ratings_through_tls_to_the_collector(fleet):
    settings = collector_tls_settings(fleet)
    ingestor = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    ingestor.start()
    kiosk_settings = load_kiosk_settings(fleet["tmp"] / "k-vb-q1" / "kiosk.toml")
    kiosk_settings = replace(
        kiosk_settings, data_dir=fleet["tmp"] / "kiosk-data", panel=replace(kiosk_settings.panel, debounce_s=0.0)
    )
    rig = KioskRig(kiosk_settings, clock=FakeClock(time.time()))  # enrolled just now: presses after that
    try:
        assert wait_for(lambda: ingestor.connected and rig.kiosk.publisher.connected, 10)
        rig.press(1)
        rig.press(4)
        assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, 15)
        store = SqliteStore(settings.data_dir / "collector.db")
        assert store.rating_count() == 2
        assert rig.pump(lambda: "k-vb-q1" in store.kiosk_statuses(), 10)
    finally:
        rig.close()
        ingestor.stop()


def test_a_kiosk_cannot_write_or_read_another_kiosks_topics(fleet):
    ca = fleet["ca"]
    spy, ok = mqtt_client_for(
        fleet["port"], ca.ca_crt, ca.folder / "collector.crt", ca.folder / "collector.key", name=COLLECTOR_IDENTITY
    )
    assert ok
    spy.subscribe("sat/v1/#", qos=1)
    vb = fleet["tmp"] / "k-vb-q1"
    intruder, ok = mqtt_client_for(fleet["port"], vb / "ca.crt", vb / "kiosk.crt", vb / "kiosk.key", name="k-vb-q1")
    assert ok
    intruder.subscribe("sat/v1/k/k-sp-q1/acks", qos=1)
    intruder.subscribe("sat/v1/k/k-vb-q1/acks", qos=1)
    wait_for(lambda: False, 0.5)
    fake = wire.Rating(
        id=uuid7(),
        install="a1b2c3d4",
        seq=1,
        counter="sp-q1",
        score=1,
        pressed_at=wire.format_epoch(1.79e9),
        clock="synced",
        snapshot=None,
        snapshot_error="camera_disabled",
        flag=None,
        fw="0.1.0",
    )
    intruder.publish("sat/v1/k/k-sp-q1/ratings", wire.encode_batch("k-sp-q1", [fake]), qos=1)
    intruder.publish("sat/v1/k/k-sp-q1/status", wire.offline_will("k-sp-q1"), qos=1)
    intruder.publish("sat/v1/k/k-vb-q1/status", wire.offline_will("k-vb-q1"), qos=1)  # its own: allowed
    spy.publish("sat/v1/k/k-sp-q1/acks", wire.encode_ack([fake.id]), qos=1)
    spy.publish("sat/v1/k/k-vb-q1/acks", wire.encode_ack([fake.id]), qos=1)
    assert wait_for(lambda: "sat/v1/k/k-vb-q1/status" in spy.received and intruder.received, 5)
    wait_for(lambda: False, 1.0)
    assert "sat/v1/k/k-sp-q1/ratings" not in spy.received
    assert "sat/v1/k/k-sp-q1/status" not in spy.received
    assert intruder.received == ["sat/v1/k/k-vb-q1/acks"]
    for c in (spy, intruder):
        c.loop_stop()


def test_a_kiosk_reads_the_collector_status_but_cannot_write_it(fleet):
    ca = fleet["ca"]
    collector, ok = mqtt_client_for(
        fleet["port"], ca.ca_crt, ca.folder / "collector.crt", ca.folder / "collector.key", name=COLLECTOR_IDENTITY
    )
    assert ok
    collector.subscribe("sat/v1/collector/status", qos=1)
    vb = fleet["tmp"] / "k-vb-q1"
    kiosk, ok = mqtt_client_for(fleet["port"], vb / "ca.crt", vb / "kiosk.crt", vb / "kiosk.key", name="k-vb-q1")
    assert ok
    kiosk.subscribe("sat/v1/collector/status", qos=1)
    wait_for(lambda: False, 0.5)
    kiosk.publish("sat/v1/collector/status", wire.encode_collector_status("offline"), qos=1, retain=True)
    wait_for(lambda: False, 1.0)
    assert "sat/v1/collector/status" not in collector.received  # the kiosk's lie did not get through
    collector.publish("sat/v1/collector/status", wire.encode_collector_status("online", "s1"), qos=1, retain=True)
    assert wait_for(lambda: "sat/v1/collector/status" in kiosk.received, 5)
    for c in (collector, kiosk):
        c.loop_stop()


def test_no_certificate_another_ca_and_plain_tcp_are_refused(fleet, tmp_path):
    ca = fleet["ca"]
    assert not mqtt_client_for(fleet["port"], ca.ca_crt)[1]  # TLS, but no client certificate
    other = FleetCA(tmp_path / "other")
    other.init(broker_hosts=("127.0.0.1",))
    key, cert = other.issue_client("k-vb-q1")
    (tmp_path / "o.key").write_bytes(key)
    (tmp_path / "o.crt").write_bytes(cert)
    assert not mqtt_client_for(fleet["port"], ca.ca_crt, tmp_path / "o.crt", tmp_path / "o.key", name="k-vb-q1")[1]
    assert not mqtt_client_for(fleet["port"], ca.ca_crt, tls=False)[1]


def test_a_revoked_kiosk_is_refused_after_the_broker_rereads_the_list(fleet):
    sp = fleet["tmp"] / "k-sp-q1"
    vb = fleet["tmp"] / "k-vb-q1"
    assert mqtt_client_for(fleet["port"], sp / "ca.crt", sp / "kiosk.crt", sp / "kiosk.key", name="k-sp-q1")[1]
    fleet["cli"]("kiosk", "revoke", "k-sp-q1")
    fleet["broker"].restart()
    assert not mqtt_client_for(fleet["port"], sp / "ca.crt", sp / "kiosk.crt", sp / "kiosk.key", name="k-sp-q1b")[1]
    assert mqtt_client_for(fleet["port"], vb / "ca.crt", vb / "kiosk.crt", vb / "kiosk.key", name="k-vb-q1")[1]


def test_the_ca_is_never_overwritten(fleet):
    with pytest.raises(FleetError, match="exists already"):
        fleet["ca"].init()


def test_production_config_has_no_plain_listener(fleet):
    text = (fleet["tmp"] / "broker" / "mosquitto.conf").read_text()
    assert "require_certificate true" in text and "use_identity_as_username true" in text
    assert "allow_anonymous false" in text
    listeners = [line for line in text.splitlines() if line.startswith("listener")]
    assert listeners == [f"listener {fleet['port']} 127.0.0.1"]
