from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.periods import Period, parse_period, period_of

D = date.fromisoformat


@pytest.mark.parametrize(
    ("kind", "anchor", "start", "end", "previous"),
    [
        ("day", "2026-11-22", "2026-11-22", "2026-11-22", ("2026-11-21", "2026-11-21")),
        ("week", "2026-11-22", "2026-11-16", "2026-11-22", ("2026-11-09", "2026-11-15")),
        ("month", "2026-03-31", "2026-03-01", "2026-03-31", ("2026-02-01", "2026-02-28")),
        ("quarter", "2026-11-22", "2026-10-01", "2026-12-31", ("2026-07-01", "2026-09-30")),
        ("year", "2026-11-22", "2026-01-01", "2026-12-31", ("2025-01-01", "2025-12-31")),
    ],
)
def test_periods_and_the_one_before(kind, anchor, start, end, previous):
    period = period_of(kind, D(anchor))
    assert (period.start, period.end) == (D(start), D(end))
    assert (period.previous().start, period.previous().end) == (D(previous[0]), D(previous[1]))


def test_custom_range_and_its_previous():
    period = parse_period(None, None, D("2026-11-10"), D("2026-11-19"), today=D("2026-11-22"))
    assert period == Period("custom", D("2026-11-10"), D("2026-11-19"))
    assert period.previous() == Period("custom", D("2026-10-31"), D("2026-11-09"))
    with pytest.raises(ValueError, match="after"):
        parse_period(None, None, D("2026-11-20"), D("2026-11-19"), today=D("2026-11-22"))


def test_labels_are_vietnamese_dates():
    assert period_of("month", D("2026-11-22")).label_vi() == "Tháng 11/2026"
    assert period_of("quarter", D("2026-11-22")).label_vi() == "Quý 4/2026"
    assert period_of("day", D("2026-11-02")).label_vi() == "Ngày 02/11/2026"


def test_following_is_the_inverse_of_previous_for_every_kind():
    for kind in ("day", "week", "month", "quarter", "year"):
        for anchor in (date(2024, 2, 29), date(2026, 1, 1), date(2026, 12, 31), date(2026, 3, 31)):
            period = period_of(kind, anchor)
            assert period.following().previous() == period, (kind, anchor)
            assert period.following().start == period.end + timedelta(days=1)
    custom = Period("custom", date(2026, 1, 10), date(2026, 1, 19))
    assert custom.following() == Period("custom", date(2026, 1, 20), date(2026, 1, 29))


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [(D("0001-01-01"), None, None), (None, D("0001-01-01"), D("0001-01-02")), (None, D("9999-12-30"), None)],
)
def test_periods_outside_1970_2199_are_refused_not_overflowed(at, start, end):
    with pytest.raises(ValueError, match="between 1970 and 2199"):
        parse_period("week", at, start, end, D("2026-11-22"))


@pytest.mark.parametrize(
    ("kind", "at", "expected"),
    [
        ("month", date(2026, 11, 15), (date(2025, 11, 1), date(2025, 11, 30))),
        ("quarter", date(2026, 5, 2), (date(2025, 4, 1), date(2025, 6, 30))),
        ("year", date(2026, 1, 1), (date(2025, 1, 1), date(2025, 12, 31))),
        ("day", date(2028, 2, 29), (date(2027, 2, 28), date(2027, 2, 28))),
        ("week", date(2026, 11, 18), (date(2025, 11, 17), date(2025, 11, 23))),  # Monday to Sunday again
    ],
)
def test_the_same_period_a_year_before(kind, at, expected):
    before = period_of(kind, at).year_before()
    assert (before.start, before.end) == expected and before.kind == kind
    if kind == "week":
        assert before.start.weekday() == 0


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["day", "week", "month", "quarter", "year"]), at=st.dates(date(1972, 1, 1), date(2199, 12, 31))
)
def test_a_year_before_is_the_same_kind_of_period_about_a_year_earlier(kind, at):
    now = period_of(kind, at)
    before = now.year_before()
    assert before.kind == kind and before.end < now.start
    assert 358 <= (now.start - before.start).days <= 366
    assert before == period_of(kind, before.start)  # a whole period of its kind
