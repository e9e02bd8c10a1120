"""Alert rules, evaluation, and delivery on MQTT and a webhook (both real, on loopback)."""

import json
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import paho.mqtt.client as mqtt
import pytest

from collector.alerts import AlertBook, AlertLoop, AlertNotifier, RuleError
from collector.localbroker import free_port
from kiosk import wire
from tests.collector.conftest import PASSWORD
from tests.conftest import wait_for
from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


NOW = datetime.now(UTC)


def add(store, settings, counter, scores, minutes_ago=10):
    pressed_at = wire.format_time(NOW - timedelta(minutes=minutes_ago))
    ratings = [make_rating(counter=counter, score=s, seq=i + 1, pressed_at=pressed_at) for i, s in enumerate(scores)]
    store_ratings(store, ratings, tz=settings.tz, received_at=wire.format_time(NOW))


def test_rules_are_inherited_down_the_tree(store, settings):
    book = AlertBook(store, settings)
    registry = store.load_registry()
    assert book.rules_for("10.085.02953", registry).dissatisfied_share == settings.alerts.dissatisfied_share
    book.set_rules("10.085", {"dissatisfied_share": "0.1", "min_ratings": "2"}, registry)
    assert book.rules_for("10.085.02953", registry).dissatisfied_share == 0.1  # from the district
    assert book.rules_for("10.082", registry).dissatisfied_share == settings.alerts.dissatisfied_share
    with pytest.raises(RuleError):
        book.set_rules("10", {"dissatisfied_share": "7"}, registry)


def test_dissatisfied_share_opens_one_alert_until_acknowledged(store, settings):
    book = AlertBook(store, settings)
    registry = store.load_registry()
    book.set_rules("10", {"silent_min": "100000"}, registry)
    add(store, settings, "vb-q1", [1, 1, 1, 4, 4, 4, 3, 1, 1])  # 5 of 9
    add(store, settings, "sp-q1", [4, 4, 4, 4, 4, 4, 4, 4, 1])
    opened = book.evaluate(registry, NOW)
    assert [(a.kind, a.target, a.unit) for a in opened] == [("dissatisfied", "vb-q1", "10.085")]
    assert book.evaluate(registry, NOW) == []  # still open: not raised again
    with pytest.raises(RuleError):
        book.acknowledge(opened[0].id, "admin", "   ")
    book.acknowledge(opened[0].id, "admin", "talked to the officer")
    assert [a.kind for a in book.evaluate(registry, NOW)] == ["dissatisfied"]  # the condition persists


def test_silent_counter_during_office_hours_and_offline_kiosk(store, settings):
    from dataclasses import replace

    settings = replace(settings, office=replace(settings.office, weekdays=tuple(range(7)), spans=("00:00-23:59",)))
    book = AlertBook(store, settings)
    registry = store.load_registry()
    book.set_rules("10", {"silent_min": "1", "offline_min": "5"}, registry)
    midnight = datetime.now(settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    at = midnight.astimezone(UTC) + timedelta(hours=3)
    with store.transaction():
        store.record_status(
            "k-vb-q1", {"v": 1, "kiosk": "k-vb-q1", "state": "offline"}, wire.format_time(at - timedelta(minutes=30))
        )
        store.record_status(
            "k-sp-q1", {"v": 1, "kiosk": "k-sp-q1", "state": "online"}, wire.format_time(at - timedelta(minutes=3))
        )
    first = {(a.kind, a.target) for a in book.evaluate(registry, at, watching_since=at)}
    assert first == {("offline", "k-vb-q1")}  # nothing watched yet: a silence is not assumed
    kinds = {(a.kind, a.target) for a in book.evaluate(registry, at, watching_since=at - timedelta(minutes=2))}
    assert ("silent", "sp-q1") in kinds  # watched for 2 minutes, its kiosk online for 3, no press
    assert ("silent", "vb-q1") not in kinds  # its kiosk is offline: presses may be waiting in it
    assert ("silent", "pl-q1") not in kinds  # no kiosk installed there: nobody to press
    assert ("offline", "k-pl-q1") not in kinds  # never installed is not an outage


# Found by a review: a silence counted from before the counter's kiosk was online and caught up.


def test_a_kiosk_that_just_came_online_with_a_backlog_is_not_a_silent_counter(store, settings):
    settings = replace(settings, office=replace(settings.office, weekdays=tuple(range(7)), spans=("00:00-23:59",)))
    book = AlertBook(store, settings)
    registry = store.load_registry()
    book.set_rules("10", {"silent_min": "60", "offline_min": "5"}, registry)
    midnight = datetime.now(settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    at = midnight.astimezone(UTC) + timedelta(hours=5)
    # The kiosk was offline all morning (presses kept in it), and reconnects now: its first status
    # says 40 ratings are waiting; they arrive in the next seconds.
    with store.transaction():
        store.record_status(
            "k-sp-q1", {"v": 1, "kiosk": "k-sp-q1", "state": "offline"}, wire.format_time(at - timedelta(hours=4))
        )
        store.record_status(
            "k-sp-q1",
            {
                "v": 1,
                "kiosk": "k-sp-q1",
                "state": "online",
                "at": wire.format_time(at),
                "backlog": {"ratings": 40, "snapshots": 0},
            },
            wire.format_time(at),
        )
    # The collector has watched since 4 h ago (watching_since), the kiosk since 0 s.
    kinds = {(a.kind, a.target) for a in book.evaluate(registry, at, watching_since=at - timedelta(hours=4))}
    assert ("silent", "sp-q1") not in kinds, "silent alert the moment the kiosk reconnects with 40 ratings waiting"


def test_a_kiosk_installed_a_minute_ago_is_not_a_silent_counter(store, settings):
    settings = replace(settings, office=replace(settings.office, weekdays=tuple(range(7)), spans=("00:00-23:59",)))
    book = AlertBook(store, settings)
    registry = store.load_registry()
    book.set_rules("10", {"silent_min": "60"}, registry)
    midnight = datetime.now(settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    at = midnight.astimezone(UTC) + timedelta(hours=5)
    with store.transaction():  # first status ever of a kiosk installed just now
        store.record_status(
            "k-sp-q1", {"v": 1, "kiosk": "k-sp-q1", "state": "online"}, wire.format_time(at - timedelta(minutes=1))
        )
    kinds = {(a.kind, a.target) for a in book.evaluate(registry, at, watching_since=at - timedelta(hours=4))}
    assert ("silent", "sp-q1") not in kinds, "silent for 60 min, but its kiosk has been up for 1 min"


def test_a_kiosk_the_offline_alert_calls_gone_does_not_make_its_counter_watched(store, settings):
    """A kiosk whose last status said online 3 h ago and nothing since (power cut while the broker
    was restarting: no will): the offline alert fires, and its counter is still taken as watched."""
    settings = replace(settings, office=replace(settings.office, weekdays=tuple(range(7)), spans=("00:00-23:59",)))
    book = AlertBook(store, settings)
    registry = store.load_registry()
    book.set_rules("10", {"silent_min": "60", "offline_min": "5"}, registry)
    midnight = datetime.now(settings.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    at = midnight.astimezone(UTC) + timedelta(hours=5)
    with store.transaction():
        store.record_status(
            "k-sp-q1", {"v": 1, "kiosk": "k-sp-q1", "state": "online"}, wire.format_time(at - timedelta(hours=3))
        )
    kinds = {(a.kind, a.target) for a in book.evaluate(registry, at, watching_since=at - timedelta(hours=4))}
    assert ("offline", "k-sp-q1") in kinds
    assert ("silent", "sp-q1") not in kinds, "counter taken as watched though its only kiosk is alerted offline"


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_new_alerts_go_to_mqtt_and_the_webhook(store, ingest_settings, broker):
    from dataclasses import replace

    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = replace(
        ingest_settings,
        alerts=replace(ingest_settings.alerts, webhook=f"http://127.0.0.1:{port}/hook", silent_min=100000),
    )
    seen = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="alert-watcher", protocol=mqtt.MQTTv5)
    sub.on_message = lambda c, u, m: seen.append((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("sat/v1/alerts", qos=1)
    sub.loop_start()
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="alert-publisher", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        add(store, settings, "kyh-q1", [1] * 9)
        notifier = AlertNotifier(settings, lambda topic, body: pub.publish(topic, body, qos=1))
        opened = AlertLoop(settings=settings, notifier=notifier).run_once(store)
        assert [a.target for a in opened] == ["kyh-q1"]
        assert wait_for(lambda: seen and Hook.received)
        topic, body = seen[0]
        assert topic == "sat/v1/alerts" and body["kind"] == "dissatisfied" and body["unit"] == "10.085.02953"
        assert Hook.received[0]["target"] == "kyh-q1"
    finally:
        server.shutdown()
        sub.loop_stop()
        pub.loop_stop()


def test_unreachable_webhook_is_logged_not_fatal(store, settings, caplog):
    from dataclasses import replace

    settings = replace(
        settings, alerts=replace(settings.alerts, webhook=f"http://127.0.0.1:{free_port()}/x", silent_min=100000)
    )
    add(store, settings, "kyh-q1", [1] * 9)
    opened = AlertLoop(settings=settings, notifier=AlertNotifier(settings, None)).run_once(store)
    assert len(opened) == 1 and "webhook" in caplog.text


def test_alert_list_filters_by_unit_and_state_and_links_to_the_counter(store, settings, client_for):
    book = AlertBook(store, settings)
    registry = store.load_registry()
    vb = book.open_alert(
        "dissatisfied",
        "vb-q1",
        "10.085",
        {"counter_name": "vb-q1", "unhappy": 5, "total": 9, "share": 0.56, "window_h": "24"},
        NOW,
    )
    sp = book.open_alert(
        "dissatisfied",
        "sp-q1",
        "10.082",
        {"counter_name": "sp-q1", "unhappy": 3, "total": 4, "share": 0.75, "window_h": "24"},
        NOW,
    )
    kiosk = book.open_alert(
        "offline",
        "k-sp-q1",
        "10.082",
        {"kiosk": "k-sp-q1", "counter_name": "sp-q1", "since_local": "22/11/2026 08:00"},
        NOW,
    )
    assert vb and sp and kiosk
    book.acknowledge(sp.id, "admin", "đã nhắc cán bộ")

    def logged_in(name: str):  # the pages take a session, not Basic credentials
        client = client_for(name)
        client.auth = None
        client.post("/login", data={"username": name, "password": PASSWORD})
        return client

    admin = logged_in("admin")

    def shown(query: str) -> set[int]:
        answer = admin.get(f"/alerts{query}")
        assert answer.status_code == 200, answer.text
        return {int(n) for n in re.findall(r'data-alert="(\d+)"', answer.text)}

    assert shown("") == {vb.id, sp.id, kiosk.id}
    assert shown("?unit=10.082") == {sp.id, kiosk.id}
    assert shown("?unit=10.082&state=open") == {kiosk.id}
    assert shown("?state=acked") == {sp.id}
    assert shown("?unit=10&state=open") == {vb.id, kiosk.id}  # a unit means everything below it
    day = NOW.astimezone(settings.tz).date().isoformat()
    first = (NOW - timedelta(hours=24)).astimezone(settings.tz).date().isoformat()  # the alert's 24-hour window
    page = admin.get("/alerts?unit=10.085").text
    assert f'href="/counters/vb-q1?from={first}&amp;to={day}"' in page and registry.counters["vb-q1"].name in page
    assert admin.get("/alerts?state=everything").status_code == 400
    # The API filters the same way (from the review: it ignored unit and state).
    api = client_for("admin")

    def listed(query: str) -> set[int]:
        answer = api.get(f"/api/v1/alerts{query}")
        assert answer.status_code == 200, answer.text
        return {a["id"] for a in answer.json()["alerts"]}

    assert listed("") == {vb.id, sp.id, kiosk.id}
    assert listed("?unit=10.082&state=open") == {kiosk.id}
    assert listed("?state=acked") == {sp.id}
    assert listed("?open_only=true") == {vb.id, kiosk.id}
    assert api.get("/api/v1/alerts?state=zzz").status_code == 422
    assert api.get("/api/v1/alerts?unit=nope").status_code == 404
    # an inspector of Văn Bàn neither sees Sa Pa's alerts nor may ask for them
    vanban = logged_in("vanban")
    assert vanban.get("/alerts?unit=10.082").status_code == 404
    assert 'data-alert="' + str(sp.id) + '"' not in vanban.get("/alerts").text


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"window_h": "1e308"}, "Khoảng xét (giờ) phải lớn hơn 0 và không quá 8784"),
        ({"window_h": "nan"}, "không phải là một số"),
        ({"min_ratings": "99999999999999999999999"}, "Số lượt tối thiểu để xét phải là số nguyên từ 1 đến 1000000"),
        ({"min_ratings": "1.5"}, "không phải là một số"),
        ({"dissatisfied_share": "abc"}, "không phải là một số"),
        ({"dissatisfied_share": "1,5"}, "Tỷ lệ không hài lòng phải lớn hơn 0 và không quá 1"),
    ],
)
def test_rules_out_of_bounds_are_refused_in_words_and_alerts_go_on(store, settings, client_for, values, words):
    """From the review: window_h = 1e308 was stored, and every later evaluation failed with an
    OverflowError, for every unit."""
    from tests.collector.conftest import PASSWORD

    admin = client_for("admin")
    admin.auth = None
    admin.post("/login", data={"username": "admin", "password": PASSWORD})
    token = admin.get("/admin/rules").text.split('name="csrf" value="')[1].split('"')[0]
    page = admin.post("/admin/rules", data={"csrf": token, "unit": "10", **values}, follow_redirects=False)
    assert page.status_code == 422 and words in page.text, page.text[-2000:]  # the form again, with why
    assert AlertBook(store, settings).own_rules() == {}
    registry = store.load_registry()
    assert AlertBook(store, settings).set_rules("10", {"dissatisfied_share": "0,3"}, registry).dissatisfied_share == 0.3


def test_rules_stored_out_of_bounds_before_are_ignored_not_a_stop(store, settings):
    store.alert_rules_put("10.085", json.dumps({"dissatisfied_share": 0.5, "window_h": 1e308, "min_ratings": 1,
                                                "silent_min": 90, "offline_min": 15}))  # fmt: skip
    registry = store.load_registry()
    book = AlertBook(store, settings)
    assert "10.085" not in book.own_rules()
    book.evaluate(registry, NOW)  # no OverflowError


def test_an_alert_acknowledged_twice_is_audited_once_and_the_page_says_so(store, settings, inspector):
    """From the review: a second acknowledgement (two inspectors, a form sent again) redirected as if
    done and wrote a second audit entry though the alert did not change."""
    from datetime import UTC, datetime

    alert = AlertBook(store, settings).open_alert(
        "dissatisfied",
        "vb-q1",
        "10.085",
        {"counter": "vb-q1", "counter_name": "Quầy 1", "minutes": 5},
        datetime.now(UTC),
    )
    csrf = inspector.get("/alerts").text.split('name="csrf" value="')[1].split('"')[0]
    first = inspector.post(f"/alerts/{alert.id}/ack", data={"csrf": csrf, "comment": "Đã gọi cán bộ"})
    assert "✓ Đã xác nhận cảnh báo" in first.text
    again = inspector.post(f"/alerts/{alert.id}/ack", data={"csrf": csrf, "comment": "Lần nữa"})
    assert "đã được xác nhận từ trước" in again.text
    assert len(store.audit_for(f"alert:{alert.id}", ["ack_alert"])) == 1
    assert AlertBook(store, settings).alert(alert.id).ack_comment == "Đã gọi cán bộ"
    too_long = inspector.post(f"/alerts/{alert.id}/ack", data={"csrf": csrf, "comment": "x" * 1001})
    assert too_long.status_code == 422
