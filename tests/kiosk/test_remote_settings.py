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
from tests.conftest import wait_for
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
        st.sampled_from(
            ["lockout_s", "max_per_minute", "flagged_per_minute", "scores", "enabled", "jpeg_quality"]
            + ["weekdays", "spans", "timezone"]
        ),
        st.one_of(
            st.integers(-5, 700),
            st.floats(allow_nan=True),
            st.booleans(),
            st.lists(st.integers(0, 7)),
            st.lists(st.sampled_from(["07:30-11:30", "13:30-17:00", "17:00-07:00", "7h-11h", ""]), max_size=3),
            st.sampled_from(["Asia/Ho_Chi_Minh", "UTC", "Mars/Olympus", "../etc/passwd", ""]),
        ),
        max_size=3,
    ),
)
config_docs = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2]), "kiosk": st.sampled_from(["k-vb-q1", "k-vb-q1", "k-x"])},
    optional={
        "revision": st.one_of(st.integers(-1, 50), junk),
        "settings": st.one_of(
            st.dictionaries(
                st.sampled_from(["panel", "camera", "outbox", "office", "mqtt"]), section_values, max_size=3
            ),
            junk,
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


def test_office_hours_come_from_kiosk_toml_or_remotely_and_bad_ones_are_refused(tmp_path):
    base = {"kiosk_id": "k-vb-q1", "counter": "vb-q1", "data_dir": str(tmp_path)}
    assert settings_from_dict(base, base_dir=tmp_path).office.weekdays == ()  # unknown: updates restart at once
    office = settings_from_dict(
        {**base, "office": {"weekdays": [0, 1, 2, 3, 4], "spans": ["07:30-11:30", "13:30-17:00"]}}, base_dir=tmp_path
    ).office
    import datetime as dt

    monday_9 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 09:00 in Hà Nội
    assert office.is_open(monday_9)
    assert not office.is_open(monday_9 + dt.timedelta(hours=3, minutes=45))  # 12:45, lunch
    assert not office.is_open(monday_9 + dt.timedelta(days=5))  # Saturday
    from kiosk.errors import ConfigError

    for bad, words in (
        ({"weekdays": [7]}, "weekdays"),
        ({"spans": ["17:00-07:00"]}, "end must be after"),
        ({"spans": ["7h-11h"]}, "HH:MM-HH:MM"),
        ({"weekdays": [0], "timezone": "Mars/Olympus"}, "unknown"),
        ({"weekdays": [0], "timezone": "../../etc/passwd"}, "unknown"),
    ):
        with pytest.raises(ConfigError, match=words):
            settings_from_dict({**base, "office": bad}, base_dir=tmp_path)
        with pytest.raises(remote.RemoteSettingsError):
            remote.check_settings({"panel": {"lockout_s": 9}, "office": bad})  # refused whole
    given = remote.check_settings({"office": {"weekdays": [5], "spans": ["08:00-11:00"], "timezone": "UTC"}})
    over = given.over(settings_from_dict(base, base_dir=tmp_path))
    assert over.office.weekdays == (5,) and over.office.spans == ("08:00-11:00",) and over.office.timezone == "UTC"


def test_an_installed_update_waits_for_office_hours_to_end_before_it_restarts_the_kiosk(tmp_path):
    import threading

    from kiosk.update import Offer, UpdateError, Updater

    open_now = threading.Event()
    open_now.set()
    restarts: list = []
    updater = Updater(
        data_dir=tmp_path, ca=None, tls=lambda: None, restart=lambda: restarts.append(1),
        may_switch=lambda: not open_now.is_set(),
    )  # fmt: skip
    (tmp_path / "versions" / "0.9.0" / "bin").mkdir(parents=True)
    offer = Offer("0.9.0", "https://x/r", 1, "0" * 64, b"", b"", "")
    # Past the download and install (tested elsewhere): the moment of the switch.
    thread = threading.Thread(target=updater.switch_when_allowed, args=(offer,), kwargs={"check_every_s": 0.05})
    thread.start()
    assert wait_for(lambda: (updater.report or {}).get("state") == "waiting", 5)
    assert restarts == []
    open_now.clear()  # closing time
    thread.join(5)
    assert restarts == [1] and updater.report["state"] == "switching"
    # A kiosk stopped while it waits: the thread ends, nothing switched.
    open_now.set()
    stop = threading.Event()
    stop.set()
    with pytest.raises(UpdateError, match="stopped"):
        updater.switch_when_allowed(offer, stop=stop, check_every_s=0.05)
    assert restarts == [1]


def test_the_kiosk_may_restart_outside_office_hours_or_when_it_knows_no_hours_or_no_time(tmp_path):
    import datetime as dt

    rig = KioskRig(kiosk_settings(tmp_path, 1), connect=False)
    try:
        kiosk = rig.kiosk
        assert kiosk._may_restart()  # no office hours in kiosk.toml
        kiosk.handle_config(
            json.dumps({"v": 1, "kiosk": kiosk.settings.kiosk_id, "revision": 1,
                        "settings": {"office": {"weekdays": [0, 1, 2, 3, 4, 5, 6], "spans": ["00:00-23:59"]}}}).encode()
        )  # fmt: skip
        assert kiosk.settings.office.weekdays == (0, 1, 2, 3, 4, 5, 6)
        kiosk._known_time = lambda: dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)  # type: ignore[method-assign]
        assert not kiosk._may_restart()  # open all day
        kiosk._known_time = lambda: dt.datetime(2026, 11, 23, 16, 59, 30, tzinfo=dt.UTC)  # 23:59:30 local
        assert kiosk._may_restart()
        kiosk._known_time = lambda: None  # the time is not known: an update must not wait for ever
        assert kiosk._may_restart()
    finally:
        rig.close()


def test_a_newer_collectors_sections_and_states_are_ignored_not_fatal(tmp_path):
    """A fleet runs several versions: a kiosk applies what it knows and names what it ignored; a
    collector stores a status whose state word it does not know yet."""
    doc = {"v": 1, "kiosk": "k-vb-q1", "revision": 4,
           "settings": {"panel": {"lockout_s": 20, "glow": 3}, "lamps": {"night": True}}}  # fmt: skip
    config = remote.decode_config(json.dumps(doc).encode(), kiosk="k-vb-q1")
    assert config.settings.given() == {"panel": {"lockout_s": 20}}
    assert sorted(config.ignored) == ["lamps", "panel.glow"]
    with pytest.raises(remote.RemoteSettingsError):  # the collector itself never sends unknown keys
        remote.check_settings(doc["settings"])
    with pytest.raises(remote.RemoteSettingsError, match="lockout_s"):  # a known key's bad value still refuses
        remote.decode_config(
            json.dumps({**doc, "settings": {"panel": {"lockout_s": -1}, "lamps": {}}}).encode(), kiosk="k-vb-q1"
        )
    rig = KioskRig(kiosk_settings(tmp_path, 1), connect=False)
    try:
        rig.kiosk.handle_config(json.dumps({**doc, "kiosk": rig.kiosk.settings.kiosk_id}).encode())
        assert rig.kiosk.remote == {"revision": 4, "state": "applied", "ignored": ["panel.glow", "lamps"]}
        assert rig.kiosk.settings.panel.lockout_s == 20
        wire.encode_status(rig.kiosk.status(rig.kiosk.outbox))
    finally:
        rig.close()
    status = {"v": 1, "kiosk": "k-vb-q1", "state": "online", "update": {"version": "0.9.0", "state": "verifying"},
              "settings": {"revision": 4, "state": "partly_applied"}}  # fmt: skip
    wire.validate_status(status)
    for bad in ({"version": "0.9.0", "state": "<script>"}, {"state": "x" * 40}, {"state": 3}):
        with pytest.raises(wire.WireError):
            wire.validate_status({**status, "update": bad})


def test_office_spans_are_local_hh_mm_only():
    for bad in ("07:30Z-11:30Z", "07:30+07:00-17:00+07:00", "07:30:15-11:30", "7:30-11:30", "24:00-25:00"):
        with pytest.raises(remote.RemoteSettingsError, match="HH:MM-HH:MM"):
            remote.check_settings({"office": {"spans": [bad]}})
    assert remote.check_settings({"office": {"spans": [" 07:30 - 11:30 "]}}).office.spans == (" 07:30 - 11:30 ",)
