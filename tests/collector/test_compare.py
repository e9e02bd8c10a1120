"""A unit's or a counter's figures side by side: the period, the one before, the same period a year
before — on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from kiosk import wire
from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    return any_store


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
    assert cells(text, "score-1")[:3] == ["1 (25,0 %)", "1 (50,0 %)", "0"]  # no change is 0, not +0 or -0
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


def test_a_press_with_its_picture_officer_and_the_pictured_presses_around_it(store, settings, inspector, tmp_path):
    from datetime import timedelta

    from collector.officers import Officers

    registry = store.load_registry()
    start = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)  # 09:00 local
    ratings = [
        make_rating(
            counter="vb-q1", seq=i + 1, score=1 + i % 4, pressed_at=wire.format_time(start + timedelta(minutes=i))
        )
        for i in range(4)
    ]
    store_ratings(store, ratings, tz=settings.tz)
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"\xff\xd8 a citizen \xff\xd9")
    with store.transaction():
        for r in (ratings[0], ratings[1], ratings[3]):  # the third press has no picture
            store.add_snapshot(r.id, "a" * 64, str(picture), 14, wire.format_time(start))
    officers = Officers(store, settings.tz)
    officers.add_officer("vb-07", "Nguyễn Văn An", "10.085", registry)
    officers.add_duty(
        "vb-07",
        "vb-q1",
        wire.format_time(start - timedelta(hours=1)),
        wire.format_time(start + timedelta(hours=3)),
        registry,
    )
    page = inspector.get(f"/ratings/{ratings[1].id}").text
    assert f'<img id="picture" src="/snapshots/{ratings[1].id}.jpg"' in page
    assert "15/10/2026 09:01" in page and ">Nguyễn Văn An</a>" in page
    assert f'id="before" href="/ratings/{ratings[0].id}"' in page
    assert f'id="after" href="/ratings/{ratings[3].id}"' in page  # the one without a picture is passed over
    first = inspector.get(f"/ratings/{ratings[0].id}").text
    assert 'id="before"' not in first and f'id="after" href="/ratings/{ratings[1].id}"' in first
    assert "Lượt này không có ảnh" in inspector.get(f"/ratings/{ratings[2].id}").text
    assert inspector.get("/ratings/not-an-id").status_code == 404
    counter_page = inspector.get("/counters/vb-q1?period=day&at=2026-10-15").text
    assert f'href="/ratings/{ratings[1].id}"' in counter_page


def test_the_compare_page_keeps_its_unit_when_the_period_changes(inspector):
    page = inspector.get("/compare?counter=vb-q1&period=month&at=2026-10-15").text
    assert page.count('<input type="hidden" name="counter" value="vb-q1">') == 2  # both period forms


def test_a_period_before_any_data_or_with_data_from_part_of_it_is_said_not_silently_compared(
    store, settings, inspector
):
    """From the review: a year compared with the year before, which held five weeks of data, gave
    +4.745 with no word; the previous and the year-before column were the same year twice."""
    store_ratings(
        store,
        presses("vb-q1", datetime(2025, 11, 20, 2, 0, tzinfo=UTC), [4, 1], 1)  # the first ratings ever
        + presses("vb-q1", datetime(2026, 6, 10, 2, 0, tzinfo=UTC), [4, 4, 3], 10),
        tz=settings.tz,
    )
    year = inspector.get("/compare?counter=vb-q1&period=year&at=2026-01-01").text
    assert re.findall(r"<th class=\"n\"[^>]*>([^<]+)</th>", year) == ["Năm 2026", "Năm 2025", "Thay đổi"]
    assert "Năm 2025: chỉ có dữ liệu từ 11/2025" in year
    empty = inspector.get("/compare?counter=vb-q1&period=month&at=2025-11-01").text
    assert "Tháng 10/2025: không có lượt đánh giá nào để so sánh" in empty
    ordinary = inspector.get("/compare?counter=vb-q1&period=month&at=2026-06-01").text  # May: nothing, but data before
    assert "Tháng 05/2026: không có lượt đánh giá nào để so sánh" in ordinary
    assert "chỉ có dữ liệu từ" not in ordinary
