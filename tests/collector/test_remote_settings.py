"""Remote settings on the collector: kept per unit and per kiosk (both stores), merged down the
tree, edited by admins on a page (audited, checked whole), and sent by ingest as each kiosk's
retained config — which a real kiosk then uses."""

from __future__ import annotations

import json
from urllib.parse import quote

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from collector.accounts import Accounts
from collector.errors import NotFound
from collector.registry import KioskEntry, Registry
from collector.remotesettings import ConfigSender, SettingsBook, SettingsFormError
from collector.web import create_app
from kiosk import remote, wire
from tests.collector.conftest import PASSWORD, query
from tests.collector.test_web_fuzz import FUZZ, texts
from tests.conftest import wait_for
from tests.kiosk.conftest import KioskRig, kiosk_settings

AT = "2026-11-22T03:00:00.000Z"


def test_unit_layers_merge_down_the_tree_and_the_kiosk_has_the_last_word(any_store):
    book = SettingsBook(any_store)
    registry = any_store.load_registry()
    assert book.effective("k-vb-q1", registry) is None  # nothing set: nothing sent
    book.put("unit", "10", {"panel": {"lockout_s": 10, "max_per_minute": 6}}, registry, by="admin", at=AT)
    book.put("unit", "10.085", {"panel": {"lockout_s": 3}}, registry, by="admin", at=AT)
    mine = book.put("kiosk", "k-vb-q1", {"camera": {"enabled": False}}, registry, by="admin", at=AT)
    effective = book.effective("k-vb-q1", registry)
    assert effective.settings == {"panel": {"lockout_s": 3.0, "max_per_minute": 6}, "camera": {"enabled": False}}
    assert effective.revision == mine.revision == 3
    assert [layer.scope for layer in effective.layers] == ["unit:10", "unit:10.085", "kiosk:k-vb-q1"]
    # A kiosk in Sa Pa gets only the province's.
    assert book.effective("k-psp-q1", registry).settings == {"panel": {"lockout_s": 10.0, "max_per_minute": 6}}
    # Clearing is a new revision too, so a kiosk sees the change.
    cleared = book.put("kiosk", "k-vb-q1", {}, registry, by="admin", at=AT)
    assert book.effective("k-vb-q1", registry).revision == cleared.revision == 4
    assert "camera" not in book.effective("k-vb-q1", registry).settings
    decoded = remote.decode_config(book.effective("k-vb-q1", registry).payload(), kiosk="k-vb-q1")
    assert decoded.revision == 4 and decoded.settings.given() == {"panel": {"lockout_s": 3.0, "max_per_minute": 6}}


def test_a_bad_value_or_an_unknown_scope_stores_nothing(any_store):
    book = SettingsBook(any_store)
    registry = any_store.load_registry()
    for kind, ident, values in [
        ("unit", "10", {"panel": {"lockout_s": 5, "scores": [4, 3, 2, 7]}}),
        ("unit", "10", {"mqtt": {"host": "x"}}),
        ("kiosk", "k-nobody", {"panel": {"lockout_s": 5}}),
        ("counter", "vb-q1", {"panel": {"lockout_s": 5}}),
    ]:
        with pytest.raises((SettingsFormError, NotFound)):
            book.put(kind, ident, values, registry, by="admin", at=AT)
    assert book.layers() == {}


@pytest.fixture
def admin(settings, store, users):
    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    csrf = client.get("/admin/settings").text.split('name="csrf" value="')[1].split('"')[0]
    return client, csrf


def test_admins_edit_settings_on_a_page_and_every_change_is_audited(admin, store, client_for):
    client, csrf = admin
    page = client.get("/admin/settings")
    assert page.status_code == 200 and 'data-kiosk="k-vb-q1"' in page.text
    answer = client.post(
        "/admin/settings/unit/10.085",
        data={"csrf": csrf, "panel.lockout_s": "8", "panel.scores": "1,2,3,4", "camera.enabled": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    form = client.get("/admin/settings/kiosk/k-vb-q1").text
    assert 'placeholder="8"' in form and 'placeholder="1,2,3,4"' in form  # inherited from Văn Bàn
    # One bad field: the page says which, keeps what was typed, and nothing changes.
    bad = client.post(
        "/admin/settings/kiosk/k-vb-q1",
        data={"csrf": csrf, "panel.lockout_s": "2", "camera.jpeg_quality": "500"},
    )
    assert bad.status_code == 422 and "jpeg_quality" in bad.text and 'value="2"' in bad.text
    bad = client.post("/admin/settings/kiosk/k-vb-q1", data={"csrf": csrf, "panel.max_per_minute": "four"})
    assert bad.status_code == 422 and "whole number" in bad.text
    assert SettingsBook(store).layers().keys() == {"unit:10.085"}
    # Audited with who, what and the revision.
    (row,) = [r for r in Accounts(store).audit_log() if r[2] == "set_remote_settings"]
    assert row[1] == "admin" and row[3] == "unit:10.085" and "revision 1" in row[4] and "lockout_s" in row[4]
    # Only admins; an admin without the CSRF token is refused.
    inspector = client_for("vanban")
    inspector.auth = None
    inspector.post("/login", data={"username": "vanban", "password": PASSWORD})
    assert inspector.get("/admin/settings").status_code == 403
    assert inspector.get("/admin/settings/unit/10.085").status_code == 403
    assert client.post("/admin/settings/unit/10", data={"panel.lockout_s": "1"}).status_code == 403
    assert client.post("/admin/settings/kiosk/k-nobody", data={"csrf": csrf}).status_code == 404
    assert client.post("/admin/settings/counter/vb-q1", data={"csrf": csrf}).status_code == 404


def test_an_admin_of_one_district_sees_and_sets_only_its_own(settings, store, users):
    Accounts(store).add_user("sapa-admin", PASSWORD, role="admin", unit="10.082", registry=store.load_registry())
    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    client.post("/login", data={"username": "sapa-admin", "password": PASSWORD})
    page = client.get("/admin/settings").text
    assert 'data-kiosk="k-psp-q1"' in page and 'data-kiosk="k-vb-q1"' not in page
    assert 'data-unit="10.085"' not in page and 'data-unit="10"' not in page
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    for path in ("/admin/settings/unit/10.085", "/admin/settings/unit/10", "/admin/settings/kiosk/k-vb-q1"):
        assert client.get(path).status_code == 404
        assert client.post(path, data={"csrf": csrf, "panel.lockout_s": "1"}).status_code == 404
    assert client.post("/admin/settings/kiosk/k-psp-q1", data={"csrf": csrf, "panel.lockout_s": "1"}).status_code == 200
    assert SettingsBook(store).layers().keys() == {"kiosk:k-psp-q1"}


@FUZZ
@given(kind=st.sampled_from(["unit", "kiosk", "x"]), ident=texts, values=st.lists(texts, min_size=11, max_size=11))
def test_the_settings_form_never_fails_and_stores_only_what_a_kiosk_takes(admin, store, kind, ident, values):
    client, csrf = admin
    ident = ident or "10"
    keys = [
        "panel.lockout_s",
        "panel.max_per_minute",
        "panel.flagged_per_minute",
        "panel.scores",
        "camera.enabled",
        "camera.jpeg_quality",
        "camera.width",
        "outbox.status_interval_s",
        "office.weekdays",
        "office.spans",
        "office.timezone",
    ]
    answer = client.post(
        f"/admin/settings/{kind}/{quote(ident, safe='')}", data={"csrf": csrf, **dict(zip(keys, values, strict=True))}
    )
    assert answer.status_code < 500, answer.text[:300]
    for layer in SettingsBook(store).layers().values():
        remote.check_settings(layer.settings)  # whatever was stored, a kiosk would take


def test_ingest_sends_each_kiosk_its_settings_retained_and_a_real_kiosk_uses_them(ingestor, store, broker, tmp_path):
    registry = store.load_registry()
    SettingsBook(store).put(
        "unit", "10.085", {"panel": {"lockout_s": 0, "scores": [1, 2, 3, 4]}}, registry, by="t", at=AT
    )
    seen: dict[str, bytes] = {}
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5)
    watcher.on_message = lambda c, u, m: seen.__setitem__(m.topic, bytes(m.payload))
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe("sat/v1/k/+/config", qos=1)
    watcher.loop_start()
    try:
        assert wait_for(lambda: "sat/v1/k/k-vb-q1/config" in seen, timeout_s=15)
        assert seen.get("sat/v1/k/k-psp-q1/config", b"") == b""  # Sa Pa has none: at most a clearing
        doc = json.loads(seen["sat/v1/k/k-vb-q1/config"])
        assert doc == {
            "v": 1,
            "kiosk": "k-vb-q1",
            "revision": 1,
            "settings": {"panel": {"lockout_s": 0.0, "scores": [1, 2, 3, 4]}},
        }

        # A kiosk that connects later gets it retained, uses it and says so in its status.
        rig = KioskRig(kiosk_settings(tmp_path, broker.port))
        try:
            assert rig.pump(lambda: rig.kiosk.remote == {"revision": 1, "state": "applied"}, timeout_s=15)
            assert rig.kiosk.settings.panel.scores == (1, 2, 3, 4)
            assert rig.pump(
                lambda: (store.kiosk_statuses().get("k-vb-q1") or {}).get("settings", {}).get("revision") == 1,
                timeout_s=15,
            )
            # A change on the collector reaches the running kiosk.
            SettingsBook(store).put("kiosk", "k-vb-q1", {"outbox": {"status_interval_s": 30}}, registry, by="t", at=AT)
            assert rig.pump(lambda: rig.kiosk.remote == {"revision": 2, "state": "applied"}, timeout_s=15)
            assert rig.kiosk.publisher.status_interval_s == 30
            assert rig.kiosk.settings.panel.scores == (1, 2, 3, 4)  # still the unit's
        finally:
            rig.close()
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    assert query(store, "SELECT COUNT(*) FROM remote_settings") == [(2,)]
    assert wire.Topics().config("k-vb-q1") == "sat/v1/k/k-vb-q1/config"


def test_a_kiosk_page_shows_its_health_and_an_admin_runs_a_self_test_remotely(
    ingestor, store, broker, tmp_path, settings, users
):
    rig = KioskRig(kiosk_settings(tmp_path, broker.port))
    try:
        assert rig.pump(lambda: "k-vb-q1" in store.kiosk_statuses(), timeout_s=15)
        client = TestClient(create_app(settings, store), raise_server_exceptions=False)
        client.post("/login", data={"username": "admin", "password": PASSWORD})
        page = client.get("/kiosks/k-vb-q1")
        assert page.status_code == 200 and 'id="samples"' in page.text and "0.1.0" in page.text
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        answer = client.post("/kiosks/k-vb-q1/selftest", data={"csrf": csrf}, follow_redirects=False)
        assert answer.status_code == 303
        # The request travels in the retained config; the kiosk runs what needs nobody on site.
        assert rig.pump(lambda: (rig.kiosk._selftest or {}).get("at") is not None, timeout_s=15)
        report = json.loads((rig.kiosk.settings.data_dir / "selftest.json").read_text())
        assert [c["name"] for c in report["checks"]] == ["outbox", "disk", "clock", "camera", "panel", "broker"]
        assert report["ok"] is True and report["remote"]
        assert rig.pump(
            lambda: (store.kiosk_statuses()["k-vb-q1"].get("selftest") or {}).get("ok") is True, timeout_s=15
        )
        assert "✓" in client.get("/kiosks/k-vb-q1").text.split('id="selftest"')[1][:200]
        # Once per request: the retained copy on a reconnect does not run it again.
        assert not rig.kiosk.remote_selftest(report["remote"])
        audit = [r for r in Accounts(store).audit_log() if r[2] == "request_selftest"]
        assert audit and audit[0][3] == "kiosk:k-vb-q1"
        history = client.get("/kiosks/k-vb-q1").text.split('id="history"')[1].split("</table>")[0]
        assert f"request {report['remote']}" in history and "admin" in history
    finally:
        rig.close()
    # Someone who cannot see the kiosk's counter gets 404; a non-admin cannot ask for a self-test.
    viewer = TestClient(create_app(settings, store), raise_server_exceptions=False)
    viewer.post("/login", data={"username": "sapa", "password": PASSWORD})
    assert viewer.get("/kiosks/k-vb-q1").status_code == 404
    assert viewer.get("/kiosks/k-psp-q1").status_code == 200
    inspector = TestClient(create_app(settings, store), raise_server_exceptions=False)
    inspector.post("/login", data={"username": "vanban", "password": PASSWORD})
    page = inspector.get("/kiosks/k-vb-q1")
    assert page.status_code == 200 and "/selftest" not in page.text
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0] if 'name="csrf"' in page.text else ""
    assert inspector.post("/kiosks/k-vb-q1/selftest", data={"csrf": csrf}).status_code == 403


def test_a_kiosk_moved_to_a_unit_without_settings_has_them_cleared(store):
    registry = store.load_registry()
    book = SettingsBook(store)
    book.put("unit", "10.085", {"panel": {"lockout_s": 600}}, registry, by="t", at=AT)
    sent: dict[str, bytes] = {}
    sender = ConfigSender(store, lambda: registry, sent.__setitem__)
    sender.run_once(lambda k: k)
    assert json.loads(sent["k-vb-q1"])["settings"] == {"panel": {"lockout_s": 600.0}}
    assert sent["k-psp-q1"] == b""  # nothing for Sa Pa: cleared, once
    moved = Registry.build(
        registry.units.values(),
        registry.counters.values(),
        [KioskEntry(k.id, "psp-q1" if k.id == "k-vb-q1" else k.counter) for k in registry.kiosks.values()],
    )
    sender.registry = lambda: moved
    sent.clear()
    sender.run_once(lambda k: k)
    assert sent == {"k-vb-q1": b""}  # its old unit's settings are taken back
