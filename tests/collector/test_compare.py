"""A unit's or a counter's figures side by side: the period, the one before, the same period a year
before — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from kiosk import wire
from tests.collector.conftest import PASSWORD
from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    return any_store


@pytest.fixture
def inspector(client_for):
    client = client_for("vanban")
    client.auth = None
    client.post("/login", data={"username": "vanban", "password": PASSWORD})
    return client


def presses(counter: str, when: datetime, scores: list[int], first_seq: int) -> list[wire.Rating]:
    return [
        make_rating(counter=counter, seq=first_seq + i, score=s, pressed_at=wire.format_time(when))
        for i, s in enumerate(scores)
    ]


def cells(page: str, row: str) -> list[str]:
    line = re.search(rf'<tr data-row="{row}">(.*?)</tr>', page, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", line, re.S)]


def test_this_month_last_month_and_the_same_month_last_year_side_by_side(store, settings, inspector):
    october = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
    store_ratings(
        store,
        presses("vb-q1", october, [4, 4, 3, 1], 1)  # 3 of 4 satisfied: 75 %
        + presses("vb-q1", datetime(2026, 9, 10, 2, 0, tzinfo=UTC), [4, 1], 10)  # 50 %
        + presses("vb-q1", datetime(2025, 10, 20, 2, 0, tzinfo=UTC), [4, 4, 4, 4, 1], 20)  # 80 %
        + presses("kyh-q1", october, [1, 1], 30),
        tz=settings.tz,
    )
    counter_page = inspector.get("/counters/vb-q1?period=month&at=2026-10-15").text
    link = re.search(r'id="compare-link" href="([^"]+)"', counter_page).group(1).replace("&amp;", "&")
    assert link == "/compare?counter=vb-q1&period=month&at=2026-10-01"
    page = inspector.get(link)
    assert page.status_code == 200
    text = page.text
    heads = re.findall(r"<th class=\"n\"[^>]*>([^<]+)</th>", text)
    assert heads == ["Tháng 10/2026", "Tháng 09/2026", "Thay đổi", "Tháng 10/2025", "Thay đổi"]
    assert cells(text, "rate") == ["75,0 %", "50,0 %", "+25,0 điểm %", "80,0 %", "-5,0 điểm %"]
    assert cells(text, "total") == ["4", "2", "+2", "5", "-1"]
    assert cells(text, "score-1")[:3] == ["1 (25,0 %)", "1 (50,0 %)", "+0"]
    # a unit: the district holds both counters
    district = inspector.get("/compare?unit=10.085&period=month&at=2026-10-15").text
    assert cells(district, "total")[:2] == ["6", "2"]
    assert (
        'id="compare-link" href="/compare?unit=10.085&amp;period=month&amp;at=2026-10-01"'
        in inspector.get("/units/10.085?period=month&at=2026-10-15").text
    )


def test_compare_names_one_visible_unit_or_counter(inspector):
    assert inspector.get("/compare?period=month").status_code == 422
    assert inspector.get("/compare?unit=10.085&counter=vb-q1").status_code == 422
    assert inspector.get("/compare?unit=10.082").status_code == 404  # another district's
    assert inspector.get("/compare?counter=sp-q1").status_code == 404
    assert inspector.get("/compare?unit=10.085&period=month&at=0001-01-01").status_code == 422
