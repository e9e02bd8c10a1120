from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from collector.office import OfficeHours, online_intervals, uptime_share

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_office_intervals_are_local_hours_on_weekdays():
    hours = OfficeHours()
    spans = hours.intervals(date(2026, 11, 20), date(2026, 11, 22), TZ)  # Friday to Sunday
    assert spans == [
        (utc("2026-11-20T00:30"), utc("2026-11-20T04:30")),
        (utc("2026-11-20T06:30"), utc("2026-11-20T10:00")),
    ]
    assert hours.is_open(utc("2026-11-20T01:00"), TZ)
    assert not hours.is_open(utc("2026-11-20T05:00"), TZ)  # lunch
    assert not hours.is_open(utc("2026-11-21T01:00"), TZ)  # Saturday


def test_uptime_counts_only_office_time():
    office = OfficeHours().intervals(date(2026, 11, 20), date(2026, 11, 20), TZ)  # 7.5 h
    transitions = [
        ("online", utc("2026-11-19T20:00")),
        ("offline", utc("2026-11-20T02:30")),
        ("online", utc("2026-11-20T03:30")),
    ]
    share = uptime_share(transitions, office, now=utc("2026-11-20T12:00"))
    assert share == pytest.approx(6.5 / 7.5)
    assert online_intervals([("offline", utc("2026-11-20T00:00"))], utc("2026-11-20T01:00")) == []


def test_uptime_starts_when_the_kiosk_is_installed():
    """A kiosk installed on Friday at 09:00 local and online since is fully up, not 5 % up over a
    month whose office time before its installation it could not have served."""
    office = OfficeHours().intervals(date(2026, 11, 2), date(2026, 11, 20), TZ)
    installed = [("online", utc("2026-11-20T02:00"))]
    assert uptime_share(installed, office, now=utc("2026-11-20T12:00")) == pytest.approx(1.0)
    assert uptime_share([], office, now=utc("2026-11-20T12:00")) is None  # never seen: unknown
    before_opening = [("online", utc("2026-11-20T00:00")), ("offline", utc("2026-11-20T01:30"))]
    assert uptime_share(before_opening, office, now=utc("2026-11-20T12:00")) == pytest.approx(1 / 7.5)


def test_bad_office_hours_are_refused():
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        OfficeHours(spans=("7h-11h",))
    with pytest.raises(ValueError, match="after the start"):
        OfficeHours(spans=("11:00-07:00",))
