"""Closed periods: reports say up to when their data is complete (the oldest rating a kiosk of the
subtree still holds), the monthly mail waits for the month's backlog or says what is missing, and
ratings that arrive for a month already mailed are listed as late arrivals."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.config import MailSettings
from collector.ingest import Acks, Ingestor
from collector.mailer import send_monthly
from kiosk import wire
from tests.collector.conftest import PASSWORD
from tests.collector.test_exports import october  # noqa: F401 - Văn Bàn's October 2026
from tests.collector.test_mailer import smtp  # noqa: F401 - a real SMTP server on loopback
from tests.ratings import make_rating, store_ratings

OCT = "from=2026-10-01&to=2026-10-31"


@pytest.fixture
def report_status(settings, store):
    """Publish-side view: a kiosk's status (or will) handled by the collector's own ingest."""
    handler = Ingestor(settings=settings, store=store).handler

    def report(kiosk: str, received_at: str, **fields):
        doc = {"kiosk": kiosk, "state": "online", "at": received_at, **fields}
        if fields.get("state") == "offline":
            doc = {"kiosk": kiosk, "state": "offline"}
        with store.transaction():
            outcome = handler.handle(wire.Topics().status(kiosk), wire.encode_status(doc), received_at, Acks())
        assert outcome is None

    return report


@pytest.fixture
def admin(client_for):
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    return client


def _mail_settings(config, port: int, unit: str = "10.085", wait_days: int = 3):
    return replace(
        config,
        mail=MailSettings(
            host="127.0.0.1",
            port=port,
            monthly=({"unit": unit, "to": ["chanh-vp@vanban.gov.vn"]},),
            backlog_wait_days=wait_days,
        ),
    )


def test_summary_says_complete_up_to_the_oldest_rating_a_kiosk_holds(admin, report_status):
    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 12, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    report_status(
        "k-kyh-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 3, "snapshots": 1, "oldest_at": "2026-10-31T09:00:00.000Z"},
    )
    report_status(
        "k-sp-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 40, "snapshots": 0, "oldest_at": "2026-09-01T00:00:00.000Z"},
    )
    van_ban = admin.get(f"/api/v1/units/10.085/summary?{OCT}").json()["completeness"]
    assert van_ban["complete_up_to"] == "2026-10-30T02:00:00.000Z"  # Sa Pa's kiosk is not in Văn Bàn
    assert van_ban["pending_ratings"] == 15 and van_ban["period_complete"] is False
    assert [k["kiosk"] for k in van_ban["kiosks"]] == ["k-kyh-q1", "k-vb-q1"]
    september = admin.get("/api/v1/units/10.085/summary?from=2026-09-01&to=2026-09-30").json()["completeness"]
    assert september["period_complete"] is True  # everything held was pressed after September
    counter = admin.get(f"/api/v1/counters/kyh-q1/summary?{OCT}").json()["completeness"]
    assert counter["complete_up_to"] == "2026-10-31T09:00:00.000Z" and counter["pending_ratings"] == 3


def test_an_offline_kiosk_counts_with_its_last_reported_backlog(admin, report_status):
    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 7, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    report_status("k-vb-q1", "2026-11-01T02:00:00.000Z", state="offline")
    done = admin.get(f"/api/v1/units/10.085/summary?{OCT}").json()["completeness"]
    assert done["complete_up_to"] == "2026-10-30T02:00:00.000Z"
    assert done["kiosks"][0]["state"] == "offline" and done["kiosks"][0]["ratings"] == 7


def test_a_drained_backlog_makes_the_data_complete(admin, report_status):
    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 7, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    report_status("k-vb-q1", "2026-11-01T01:05:00.000Z", backlog={"ratings": 0, "snapshots": 0, "oldest_at": None})
    done = admin.get(f"/api/v1/units/10.085/summary?{OCT}").json()["completeness"]
    assert done == {"complete_up_to": None, "pending_ratings": 0, "period_complete": True, "kiosks": []}
    assert (
        "Dữ liệu đầy đủ: không thiết bị nào còn giữ lượt đánh giá chưa gửi về" in admin.get(f"/units/10.085?{OCT}").text
    )


def test_a_kiosk_that_does_not_say_since_when_leaves_completeness_unknown(admin, report_status):
    report_status("k-vb-q1", "2026-11-01T01:00:00.000Z", backlog={"ratings": 5, "snapshots": 0})  # older firmware
    done = admin.get(f"/api/v1/units/10.085/summary?{OCT}").json()["completeness"]
    assert done["complete_up_to"] is None and done["period_complete"] is False and done["pending_ratings"] == 5
    assert (
        "Chưa rõ dữ liệu đầy đủ đến khi nào: còn 5 lượt đánh giá ở 1 thiết bị" in admin.get(f"/units/10.085?{OCT}").text
    )


def test_unit_and_counter_pages_show_data_complete_up_to(admin, report_status):
    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 12, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    for path in ("/units/10.085", "/counters/vb-q1"):
        page = admin.get(f"{path}?{OCT}").text
        assert "Dữ liệu đầy đủ đến 30/10/2026 09:00: còn 12 lượt đánh giá ở 1 thiết bị chưa gửi về" in page
        assert "Kỳ này có thể chưa đủ dữ liệu" in page and 'data-kiosk="k-vb-q1"' in page
    admin.cookies.set("lang", "en")
    english = admin.get(f"/units/10.085?{OCT}").text
    assert "Data complete up to 30/10/2026 09:00: 12 ratings at 1 kiosks not yet received" in english


def test_pdf_reports_say_up_to_when_their_data_is_complete(admin, report_status):
    from tests.collector.test_exports import pdf_text

    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 12, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    for path in ("/units/10.085/report.pdf", "/counters/vb-q1/report.pdf"):
        text = " ".join(pdf_text(admin.get(f"{path}?{OCT}").content).split())
        assert "Dữ liệu đầy đủ đến 30/10/2026 09:00" in text, path


def test_monthly_mail_waits_for_the_months_backlog(store, settings, users, october, smtp, report_status):  # noqa: F811
    port, inbox = smtp
    settings = _mail_settings(settings, port)
    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 12, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    assert send_monthly(settings, store, date(2026, 11, 1)) == []
    assert send_monthly(settings, store, date(2026, 11, 3)) == []  # still within 3 days of the month's end
    assert inbox.messages == []
    report_status("k-vb-q1", "2026-11-03T05:00:00.000Z", backlog={"ratings": 0, "snapshots": 0, "oldest_at": None})
    assert send_monthly(settings, store, date(2026, 11, 3)) == ["10.085"]  # delivered: the month is closed
    body = inbox.messages[0][1].get_body(("plain",)).get_content()
    assert "DỮ LIỆU CHƯA ĐẦY ĐỦ" not in body


def test_backlog_pressed_after_the_month_does_not_hold_its_mail(store, settings, users, october, smtp, report_status):  # noqa: F811
    port, inbox = smtp
    settings = _mail_settings(settings, port)
    report_status(
        "k-vb-q1",
        "2026-11-01T03:00:00.000Z",
        backlog={"ratings": 2, "snapshots": 0, "oldest_at": "2026-10-31T17:30:00.000Z"},
    )
    assert send_monthly(settings, store, date(2026, 11, 1)) == ["10.085"]  # 00:30 on 1 November, local


def test_mail_after_the_wait_says_what_is_missing(store, settings, users, october, smtp, report_status):  # noqa: F811
    port, inbox = smtp
    settings = _mail_settings(settings, port)
    report_status(
        "k-vb-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 12, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    report_status("k-vb-q1", "2026-11-01T02:00:00.000Z", state="offline")
    assert send_monthly(settings, store, date(2026, 11, 4)) == ["10.085"]
    body = inbox.messages[0][1].get_body(("plain",)).get_content()
    assert "DỮ LIỆU CHƯA ĐẦY ĐỦ: khi lập báo cáo, các thiết bị dưới đây còn giữ 12 lượt đánh giá chưa gửi về" in body
    assert (
        "- k-vb-q1 (Quầy 1 — Đất đai (Văn Bàn)): 12 lượt, cũ nhất bấm lúc 30/10/2026 09:00;"
        " báo lúc 01/11/2026 09:00 (Mất kết nối)" in body
    )


def test_force_sends_at_once_and_says_what_is_missing(store, settings, users, october, smtp, report_status):  # noqa: F811
    port, inbox = smtp
    settings = _mail_settings(settings, port)
    report_status(
        "k-kyh-q1",
        "2026-11-01T01:00:00.000Z",
        backlog={"ratings": 4, "snapshots": 0, "oldest_at": "2026-10-30T02:00:00.000Z"},
    )
    assert send_monthly(settings, store, date(2026, 11, 1), force=True) == ["10.085"]
    assert "k-kyh-q1 (" in inbox.messages[0][1].get_body(("plain",)).get_content()


def test_a_rating_for_a_month_already_mailed_is_a_late_arrival(admin, store, settings, october, smtp):  # noqa: F811
    port, inbox = smtp
    settings = _mail_settings(settings, port)
    now = datetime.now(UTC)
    # October's report went out two hours ago; three presses of October arrive an hour later.
    store.record_mail("10.085", "2026-10", wire.format_time(now - timedelta(hours=2)), "chanh-vp@vanban.gov.vn")
    after_mail = wire.format_time(now - timedelta(hours=1))
    late = [
        make_rating(seq=100, counter="kyh-q1", score=1, pressed_at="2026-10-28T03:00:00.000Z"),
        make_rating(seq=101, counter="kyh-q1", score=4, pressed_at="2026-10-29T03:00:00.000Z"),
        make_rating(seq=102, counter="kyh-q1", score=4, flag="lockout", pressed_at="2026-10-29T03:00:01.000Z"),
    ]
    store_ratings(store, late, tz=settings.tz, kiosk="k-kyh-q1", received_at=after_mail)

    page = admin.get("/units/10.085").text
    assert 'data-month="2026-10" data-late="2"' in page
    assert "Tháng 10/2026: 2 lượt đánh giá đến sau khi báo cáo tháng của Huyện Văn Bàn đã gửi ngày" in page
    commune = admin.get("/units/10.085.02953").text  # inside Văn Bàn, whose report covered it
    assert 'data-month="2026-10" data-late="2"' in commune
    assert 'id="late-arrivals"' not in admin.get("/units/10.082").text  # Sa Pa: nothing late

    assert send_monthly(settings, store, date(2026, 12, 1)) == ["10.085"]  # November's report …
    body = inbox.messages[-1][1].get_body(("plain",)).get_content()
    assert "ĐÁNH GIÁ ĐẾN MUỘN" in body  # … lists October's late arrivals
    assert "- 10/2026: 2 lượt (Rất hài lòng 1, Hài lòng 0, Bình thường 0, Không hài lòng 1)" in body
    assert send_monthly(settings, store, date(2027, 1, 2)) == ["10.085"]
    assert "ĐÁNH GIÁ ĐẾN MUỘN" not in inbox.messages[-1][1].get_body(("plain",)).get_content()  # listed once


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(derandomize=True, max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(oldest=JSON | st.datetimes(timezones=st.just(UTC)).map(wire.format_time), ratings=st.integers(0, 2**40))
@example(oldest="2026-10-30T02:00:00.000Z", ratings=3)
@example(oldest="2026-13-45T99:00:00.000Z", ratings=1)
@example(oldest=float("inf"), ratings=0)  # stored as Infinity, which SQLite's JSON functions cannot read
def test_any_reported_oldest_at_gives_a_page_and_an_honest_figure(store, settings, admin, oldest, ratings):
    store.conn.execute("DELETE FROM kiosk_status")  # each example starts with no status (the store is shared)
    quarantined = len(store.quarantined())
    handler = Ingestor(settings=settings, store=store).handler
    doc = {
        "v": 1,
        "kiosk": "k-vb-q1",
        "state": "online",
        "backlog": {"ratings": ratings, "snapshots": 0, "oldest_at": oldest},
    }
    # As any publisher could send it, unchecked by the kiosk's own encoder.
    payload = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    with store.transaction():
        handler.handle(wire.Topics().status("k-vb-q1"), payload, "2026-11-01T01:00:00.000Z", Acks())
    done = admin.get(f"/api/v1/units/10.085/summary?{OCT}").json()["completeness"]
    valid = isinstance(oldest, str) and _is_time(oldest)
    if done["kiosks"]:  # stored: the backlog counts, and a time is shown only when it is one
        assert done["pending_ratings"] == ratings > 0
        assert done["complete_up_to"] == (oldest if valid else None)
    else:  # nothing held, or the status was refused (and quarantined)
        assert done["complete_up_to"] is None and done["pending_ratings"] == 0
        assert ratings == 0 or len(store.quarantined()) == quarantined + 1
    assert admin.get(f"/units/10.085?{OCT}").status_code == 200


def _is_time(text: str) -> bool:
    try:
        wire.parse_time(text)
    except ValueError:
        return False
    return True
