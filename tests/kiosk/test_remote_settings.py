"""Remote settings on the retained config topic: checked whole, applied whole or refused whole,
reported in the status, kept across a restart."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk import remote, wire
from kiosk.config import settings_from_dict
from tests.kiosk.conftest import KioskRig, kiosk_settings
from tests.kiosk.test_camera import BrokenCamera
from tests.kiosk.test_kiosk_fuzz import FUZZ, junk


def config(revision: int, settings: dict, kiosk: str = "k-vb-q1") -> bytes:
    return json.dumps({"v": 1, "kiosk": kiosk, "revision": revision, "settings": settings}).encode()


def test_only_given_keys_are_kept_and_a_bad_value_refuses_the_whole():
    checked = remote.check_settings({"panel": {"lockout_s": 10, "scores": [1, 2, 3, 4]}, "camera": {"enabled": False}})
    assert checked.given() == {"panel": {"lockout_s": 10.0, "scores": [1, 2, 3, 4]}, "camera": {"enabled": False}}
    for bad, words in [
        ({"panel": {"lockout_s": -1}}, "lockout_s = -1"),
        ({"panel": {"scores": [4, 3, 2]}}, "scores"),
        ({"panel": {"scores": [4, 3, 2, 9]}}, "scores"),
        ({"panel": {"lockout": 5}}, "lockout"),  # a typo is an error, not a default
        ({"panel": {"lockout_s": None}}, "null"),
        ({"mqtt": {"host": "evil.example"}}, "no remote setting section 'mqtt'"),  # never remotely
        ({"camera": {"enabled": "no"}}, "true or false"),
        ({"outbox": {"status_interval_s": 1}}, "status_interval_s"),
        ([1], "object"),
    ]:
        with pytest.raises(remote.RemoteSettingsError, match=words):
            remote.check_settings(bad)


def test_layers_merge_key_by_key_and_go_over_kiosk_toml(tmp_path):
    merged = remote.merge(
        {"panel": {"lockout_s": 10, "max_per_minute": 6}},  # the province
        {"panel": {"lockout_s": 3}, "camera": {"enabled": False}},  # the commune
    )
    assert merged == {"panel": {"lockout_s": 3, "max_per_minute": 6}, "camera": {"enabled": False}}
    base = kiosk_settings(tmp_path, 1883)
    used = remote.check_settings(merged).over(base)
    assert (used.panel.lockout_s, used.panel.max_per_minute, used.panel.scores) == (3.0, 6, (4, 3, 2, 1))
    assert used.camera.enabled is False
    assert used.mqtt == base.mqtt and used.kiosk_id == base.kiosk_id


def test_a_config_for_another_kiosk_or_without_a_revision_is_refused():
    with pytest.raises(remote.RemoteSettingsError, match="names kiosk") as caught:
        remote.decode_config(config(3, {}, kiosk="k-other"), kiosk="k-vb-q1")
    assert caught.value.revision == 3
    for payload in (b"", b"{", b'{"v":1,"kiosk":"k-vb-q1","settings":{}}', b'{"v":2}', b"x" * 20_000):
        with pytest.raises(remote.RemoteSettingsError):
            remote.decode_config(payload, kiosk="k-vb-q1")


def publish_config(port: int, payload: bytes, kiosk: str = "k-vb-q1") -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-admin", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(wire.Topics().config(kiosk), payload, qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def test_settings_arrive_retained_apply_whole_and_show_in_the_status(rig_factory, collector, broker):
    publish_config(broker.port, config(7, {"panel": {"lockout_s": 0, "scores": [1, 2, 3, 4]}}))
    rig = rig_factory(camera=BrokenCamera())
    assert rig.pump(lambda: (rig.kiosk.remote or {}).get("revision") == 7)
    assert rig.pump(lambda: any(s.get("settings") == {"revision": 7, "state": "applied"} for s in collector.statuses))
    rig.press(1, then_advance_s=1)  # lock-out 0 s: a second press a second later is a rating too
    rig.press(4, then_advance_s=1)
    assert rig.pump(lambda: len(collector.unique()) == 2)
    assert sorted(r.score for r in collector.unique().values()) == [1, 4]  # scores reversed by the unit
    assert all(r.flag is None for r in collector.unique().values())

    # One bad value: none of it is used, the kiosk keeps revision 7 and says why.
    publish_config(broker.port, config(8, {"panel": {"scores": [4, 3, 2, 1], "lockout_s": -5}}))
    assert rig.pump(lambda: (rig.kiosk.remote or {}).get("state") == "refused")
    assert rig.kiosk.remote["revision"] == 8
    assert "lockout_s" in rig.kiosk.remote["error"]
    assert rig.kiosk.settings.panel.scores == (1, 2, 3, 4)
    assert rig.pump(lambda: any((s.get("settings") or {}).get("state") == "refused" for s in collector.statuses))

    # Camera off remotely: presses carry camera_disabled, not a camera error.
    publish_config(broker.port, config(9, {"camera": {"enabled": False}}))
    assert rig.pump(lambda: (rig.kiosk.remote or {}).get("revision") == 9)
    assert rig.kiosk.settings.panel.scores == (4, 3, 2, 1)  # revision 9 does not set them: kiosk.toml's
    rig.clock.advance(10)  # past kiosk.toml's lock-out, which is back too
    rig.press(2, then_advance_s=6)
    assert rig.pump(lambda: len(collector.unique()) == 3)
    newest = max(collector.unique().values(), key=lambda r: r.seq)
    assert (newest.score, newest.flag, newest.snapshot_error) == (3, None, "camera_disabled")


def test_the_settings_in_force_survive_a_restart_before_the_broker_answers(tmp_path, broker, collector):
    settings = kiosk_settings(tmp_path, broker.port)
    rig = KioskRig(settings)
    publish_config(broker.port, config(4, {"panel": {"max_per_minute": 9}}))
    assert rig.pump(lambda: rig.kiosk.settings.panel.max_per_minute == 9)
    rig.close()
    offline = KioskRig(settings, connect=False)  # no broker: only the kept copy
    assert offline.kiosk.settings.panel.max_per_minute == 9
    assert offline.kiosk.remote == {"revision": 4, "state": "applied"}
    offline.close()
    # The collector clears the settings: kiosk.toml alone again, and that is kept too.
    publish_config(broker.port, b"")
    again = KioskRig(settings)
    assert again.pump(lambda: again.kiosk.settings.panel.max_per_minute == 4 and again.kiosk.remote is None)
    again.close()
    assert KioskRig(settings, connect=False).kiosk.settings.panel.max_per_minute == 4


section_values = st.one_of(
    junk,
    st.dictionaries(
        st.sampled_from(["lockout_s", "max_per_minute", "flagged_per_minute", "scores", "enabled", "jpeg_quality"]),
        st.one_of(st.integers(-5, 700), st.floats(allow_nan=True), st.booleans(), st.lists(st.integers(0, 5))),
        max_size=3,
    ),
)
config_docs = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2]), "kiosk": st.sampled_from(["k-vb-q1", "k-vb-q1", "k-x"])},
    optional={
        "revision": st.one_of(st.integers(-1, 50), junk),
        "settings": st.one_of(
            st.dictionaries(st.sampled_from(["panel", "camera", "outbox", "mqtt"]), section_values, max_size=3), junk
        ),
    },
)


@settings(FUZZ, max_examples=120)
@given(docs=st.lists(st.one_of(config_docs.map(lambda d: json.dumps(d).encode()), st.binary(max_size=60)), max_size=4))
def test_any_config_message_is_applied_whole_or_refused_whole(tmp_path_factory, docs):
    folder = tmp_path_factory.mktemp("remote")
    base = settings_from_dict(
        {"kiosk_id": "k-vb-q1", "counter": "vb-q1", "data_dir": str(folder / "kiosk")}, base_dir=folder
    )
    rig = KioskRig(base, connect=False)
    try:
        for payload in docs:
            before = rig.kiosk.settings
            rig.kiosk.handle_config(payload)
            try:
                expected = remote.decode_config(payload, kiosk="k-vb-q1").settings.over(base) if payload else base
            except remote.RemoteSettingsError:
                expected = before
                assert rig.kiosk.remote is not None and rig.kiosk.remote["state"] == "refused"
            assert rig.kiosk.settings == expected
            assert rig.kiosk.gate.rules == expected.panel.rules()
            wire.encode_status(rig.kiosk.status(rig.kiosk.outbox))  # the status stays sendable
    finally:
        rig.close()


def test_a_config_carrying_a_big_update_offer_is_read_and_its_settings_still_bounded():
    """Found by the real-release test: a manifest of 20 wheels is more than 1,024 characters."""
    offer = {"version": "0.2.0", "manifest": "A" * 5000, "signer": "-----BEGIN CERTIFICATE-----\n" + "B" * 900}
    payload = json.dumps({"v": 1, "kiosk": "k-vb-q1", "revision": 3, "settings": {}, "update": offer}).encode()
    assert remote.decode_config(payload, kiosk="k-vb-q1").extra["update"]["manifest"] == "A" * 5000
    long_key = json.dumps({"v": 1, "kiosk": "k-vb-q1", "revision": 3, "settings": {"x" * 2000: {}}}).encode()
    with pytest.raises(remote.RemoteSettingsError, match="bad_text"):
        remote.decode_config(long_key, kiosk="k-vb-q1")
