"""Page figures are never silently cut: the heat map and the review queue are counted in SQL over
the whole period, and lists longer than a page are paged, with every row reachable."""

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.office import OfficeHours
from collector.store import utc_offsets
from kiosk import wire
from tests.ratings import make_rating, store_ratings

MONTH = "period=month&at=2026-10-15"
ROW_FORM = re.compile(r'action="/flagged/[0-9a-f-]{36}/review"')  # one press's own review form
# Thursday 15 October 2026, 09:00 in Hà Nội (02:00Z): inside office hours.
THURSDAY_9H = datetime(2026, 10, 15, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


def _presses(n: int, *, flag: str | None = None, start: datetime = THURSDAY_9H, step_ms: int = 100) -> list:
    return [
        make_rating(seq=i + 1, flag=flag, pressed_at=wire.format_time(start + timedelta(milliseconds=step_ms * i)))
        for i in range(n)
    ]


def test_twenty_thousand_and_one_flagged_presses_are_all_counted(store, settings, inspector):
    store_ratings(store, _presses(20_001, flag="lockout"), tz=settings.tz)
    page = inspector.get(f"/flagged?{MONTH}").text
    assert "<span data-pending>20.001</span> / <span data-total>20.001</span>" in page
    assert "1–200 / 20.001" in page
    last = inspector.get(f"/flagged?{MONTH}&page=101").text
    assert "20.001–20.001 / 20.001" in last and 'rel="next"' not in last and 'rel="prev"' in last
    assert len(ROW_FORM.findall(last)) == 1  # the oldest press, reachable and reviewable


def test_review_queue_counts_reviewed_and_pending_in_full(store, settings, inspector):
    presses = _presses(5, flag="burst")
    store_ratings(store, presses, tz=settings.tz)
    me = inspector.get("/flagged").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', me).group(1)
    inspector.post(f"/flagged/{presses[0].id}/review", data={"comment": "ok", "csrf": csrf})
    page = inspector.get(f"/flagged?{MONTH}").text
    assert "<span data-pending>4</span> / <span data-total>5</span>" in page
    assert len(ROW_FORM.findall(page)) == 4
    everything = inspector.get(f"/flagged?{MONTH}&reviewed=1").text
    assert "1–5 / 5" in everything and "vanban: ok" in everything


def test_heat_map_counts_every_rating_of_the_period_and_shows_the_dissatisfied_share(store, settings, inspector):
    presses = _presses(5_001)  # all on Thursday between 9h and 10h local
    unhappy = [make_rating(seq=6_000 + i, score=1, pressed_at=presses[i].pressed_at) for i in range(1_667)]
    store_ratings(store, presses + unhappy, tz=settings.tz)
    page = inspector.get(f"/counters/vb-q1?{MONTH}").text
    heat = page[page.index("<h2>Tỷ lệ Không hài lòng theo giờ và thứ") :]
    heat = heat[: heat.index("</svg>")]
    assert 'data-n="6668" data-unhappy="1667"' in heat
    assert ">25 %</text>" in heat and ">1.667/6.668</text>" in heat  # the share, over its counts
    assert "Không hài lòng / 6.668 (25 %)" in heat


def test_recent_ratings_are_paged_not_cut(store, settings, inspector):
    store_ratings(store, _presses(120, step_ms=60_000), tz=settings.tz)
    first = inspector.get(f"/counters/vb-q1?{MONTH}").text
    assert "1–50 / 120" in first and first.count("<tr data-score=") == 50
    third = inspector.get(f"/counters/vb-q1?{MONTH}&page=3").text
    assert "101–120 / 120" in third and third.count("<tr data-score=") == 20
    assert inspector.get(f"/counters/vb-q1?{MONTH}&page=zero").status_code == 422


def test_presses_outside_office_hours_are_in_the_queue(store, settings, inspector):
    saturday = datetime(2026, 10, 17, 3, 0, tzinfo=UTC)
    evening = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)  # 19:00 local
    ratings = [
        make_rating(seq=1, pressed_at=wire.format_time(saturday)),
        make_rating(seq=2, pressed_at=wire.format_time(evening)),
        make_rating(seq=3, pressed_at=wire.format_time(THURSDAY_9H)),
        make_rating(seq=4, pressed_at=wire.format_time(THURSDAY_9H), clock="unsynced"),
    ]
    store_ratings(store, ratings, tz=settings.tz)
    page = inspector.get(f"/flagged?{MONTH}").text
    assert "<span data-total>3</span>" in page
    tags = re.findall(r"<span class=\"tag\">([^<]+)</span>", page)
    assert tags.count("Ngoài giờ làm việc") == 2 and tags.count("Đồng hồ chưa đồng bộ") == 1


ZONES = ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


# The factory gives each example a fresh store, so the function-scoped fixture is safe here.
@settings(derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    moments=st.lists(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)),
        min_size=1,
        max_size=20,
    ),
)
def test_sql_local_time_agrees_with_python_for_any_zone(store_factory, zone, moments):
    """The SQL that finds presses outside office hours and fills the heat map reads local time as
    Python does, across DST changes and half-hour offsets."""
    store = store_factory()
    tz = ZoneInfo(zone)
    office = OfficeHours((0, 1, 2, 3, 4), ("07:30-11:30", "13:30-17:00"))
    ratings = [
        make_rating(seq=i + 1, pressed_at=wire.format_time(m.replace(microsecond=m.microsecond // 1000 * 1000)))
        for i, m in enumerate(moments)
    ]
    store_ratings(store, ratings, tz=tz)
    start, end = "2025-12-31T00:00:00.000Z", "2027-01-02T00:00:00.000Z"
    queue = store.review_queue(
        ["vb-q1"],
        start,
        end,
        tz=tz,
        office_days=office.weekdays,
        office_spans=office.span_times,
        pending_only=False,
        limit=100,
    )
    after_hours = {r["id"] for r in queue if r["after_hours"]}
    for r in ratings:
        local = wire.parse_time(r.pressed_at).astimezone(tz)
        if _near_a_change(wire.parse_time(r.pressed_at), tz):
            continue  # a change of offset is placed on the hour after it (Lord Howe moves by 30 min)
        assert (r.id in after_hours) == (not office.is_open(local, tz)), (r.pressed_at, local)
    cells = {(d, h): n for d, h, n, _ in store.heat_counts(["vb-q1"], start, end, tz=tz)}
    expected: dict[tuple[int, int], int] = {}
    for r in ratings:
        if _near_a_change(wire.parse_time(r.pressed_at), tz):
            continue
        local = wire.parse_time(r.pressed_at).astimezone(tz)
        expected[(local.weekday(), local.hour)] = expected.get((local.weekday(), local.hour), 0) + 1
    assert all(cells.get(k, 0) >= n for k, n in expected.items())
    assert sum(cells.values()) == len(ratings)


def _near_a_change(moment: datetime, tz: ZoneInfo) -> bool:
    before, after = (moment + timedelta(hours=h) for h in (-1, 1))
    return before.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request, tmp_path):
    """A fresh store for each generated example: a new SQLite file, or the one PostgreSQL
    database emptied (a database per example would cost more than the test)."""
    from collector.registry import load_registry
    from tests.collector.conftest import REGISTRY, open_test_store

    opened = []

    def make():
        if request.param == "sqlite" or not opened:
            s = open_test_store(request.param, request, tmp_path / f"s{len(opened)}.db")
            s.replace_registry(load_registry(REGISTRY))
            opened.append(s)
        s = opened[-1]
        if request.param == "postgresql":
            s.conn.execute("TRUNCATE ratings, daily, monthly, installs, after_month, reviews, snapshots")
        return s

    yield make
    for s in opened:
        s.close()


def test_utc_offsets_follow_daylight_saving_changes():
    berlin = ZoneInfo("Europe/Berlin")
    offsets = utc_offsets("2026-03-01T00:00:00.000Z", "2026-11-01T00:00:00.000Z", berlin)
    assert offsets == [
        ("2026-03-01T00:00:00.000Z", 60),
        ("2026-03-29T01:00:00.000Z", 120),
        ("2026-10-25T01:00:00.000Z", 60),
    ]
    assert utc_offsets("2026-03-01T00:00:00.000Z", "2027-03-01T00:00:00.000Z", ZoneInfo("Asia/Ho_Chi_Minh")) == [
        ("2026-03-01T00:00:00.000Z", 420)
    ]
    assert time(7, 30) in OfficeHours().span_times[0]


@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.one_of(st.integers(min_value=-5, max_value=10**12).map(str), st.text(max_size=12)))
@example(page="²")  # a digit to str.isdigit, not to int()
@example(page="٣")
def test_any_page_number_is_a_page_or_a_clear_refusal(inspector, page):
    for path in ("/flagged", "/counters/vb-q1"):
        response = inspector.get(path, params={"page": page})
        if re.fullmatch("[0-9]+", page) and 1 <= int(page) <= 1_000_000:
            assert response.status_code == 200
        else:
            assert response.status_code == 422 and "a whole number from 1" in response.text


def test_periods_have_previous_and_next_but_no_next_into_the_future(inspector):
    page = inspector.get("/counters/vb-q1?period=month&at=2026-10-15").text
    assert 'href="?period=month&amp;at=2026-09-01" rel="prev"' in page
    assert 'href="?period=month&amp;at=2026-11-01" rel="next"' in page
    this_month = inspector.get("/units/10.085?period=month").text
    assert 'rel="prev"' in this_month and 'rel="next"' not in this_month


def test_the_review_queue_filters_by_reason_unit_and_counter(store, settings, inspector):
    night = THURSDAY_9H + timedelta(hours=13)  # 22:00 local: after office hours
    store_ratings(
        store,
        _presses(3, flag="lockout")
        + _presses(2, flag="burst", start=THURSDAY_9H + timedelta(minutes=5))
        + [make_rating(seq=50, pressed_at=wire.format_time(night))]
        + [make_rating(seq=60, counter="ky-q1", flag="burst", pressed_at=wire.format_time(THURSDAY_9H))],
        tz=settings.tz,
    )

    def rows(query: str) -> int:
        page = inspector.get(f"/flagged?{MONTH}&{query}")
        assert page.status_code == 200, page.text[:300]
        return page.text.count("<tr data-id=")

    assert rows("") == 7
    assert rows("reason=lockout") == 3
    assert rows("reason=burst") == 3
    assert rows("reason=after_hours") == 1
    assert rows("reason=burst&counter=vb-q1") == 2
    assert rows("unit=10.085.02944") == 1  # Khánh Yên's counter ky-q1, below the district
    assert rows("unit=10.085") == 7
    page = inspector.get(f"/flagged?{MONTH}&reason=burst").text
    assert "<span data-pending>3</span> / <span data-total>3</span>" in page  # the counts follow the filter
    assert inspector.get(f"/flagged?{MONTH}&reason=everything").status_code == 422
    assert inspector.get(f"/flagged?{MONTH}&counter=sp-q1").status_code == 404  # not this inspector's
    assert inspector.get(f"/flagged?{MONTH}&unit=10.082").status_code == 404


def test_several_presses_are_reviewed_at_once_with_one_comment_all_or_none(store, settings, inspector):
    presses = _presses(4, flag="burst")
    elsewhere = make_rating(seq=90, counter="sp-q1", flag="burst", pressed_at=presses[0].pressed_at)
    store_ratings(store, [*presses, elsewhere], tz=settings.tz)
    page = inspector.get(f"/flagged?{MONTH}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert page.count('type="checkbox" name="id"') == 4 and 'form="bulk-review"' in page
    # one press of another district among them: nothing is reviewed
    refused = inspector.post(
        "/flagged/review", data={"csrf": csrf, "comment": "x", "id": [presses[0].id, elsewhere.id]}
    )
    assert refused.status_code == 404
    # nothing ticked: the same page again, filters, comment and message kept (the comment was lost)
    again = inspector.post(f"/flagged/review?{MONTH}&reason=burst", data={"csrf": csrf, "comment": "Đã gọi điện"})
    assert again.status_code == 422
    assert 'value="Đã gọi điện"' in again.text and "Hãy chọn ít nhất một lượt bấm" in again.text
    assert again.text.count("<tr data-id=") == 4 and 'value="burst" selected' in again.text
    assert f'action="/flagged/review?{MONTH.replace("&", "&amp;")}&amp;reason=burst"' in again.text
    too_long = inspector.post(
        f"/flagged/review?{MONTH}", data={"csrf": csrf, "comment": "x" * 1001, "id": [presses[1].id]}
    )
    assert too_long.status_code == 422 and f'value="{presses[1].id}" form="bulk-review" aria-label' in too_long.text
    assert "checked" in too_long.text.split(f'value="{presses[1].id}" form="bulk-review"')[1][:60]
    assert inspector.post("/flagged/review", data={"csrf": "wrong", "id": [presses[0].id]}).status_code == 403
    done = inspector.post(
        "/flagged/review",
        data={"csrf": csrf, "comment": "Cán bộ đã giải thích", "id": [presses[0].id, presses[2].id]},
        follow_redirects=False,
    )
    assert done.status_code == 303
    # the same presses again (a page made before the first review): refused, the first review kept
    again = inspector.post("/flagged/review", data={"csrf": csrf, "comment": "lần hai", "id": [presses[0].id]})
    assert again.status_code == 422 and "đã được vanban xem xét" in again.text
    single = inspector.post(f"/flagged/{presses[2].id}/review", data={"csrf": csrf, "comment": "lần hai"})
    assert single.status_code == 409
    page = inspector.get(f"/flagged?{MONTH}").text
    assert "<span data-pending>2</span> / <span data-total>4</span>" in page
    reviewed = inspector.get(f"/flagged?{MONTH}&reviewed=1").text
    assert reviewed.count("vanban: Cán bộ đã giải thích") == 2
    for press in (presses[0], presses[2]):  # each review is in the audit trail
        assert len(store.audit_for(f"rating:{press.id}", ["review"])) == 1
    assert store.audit_for(f"rating:{elsewhere.id}", ["review"]) == []
