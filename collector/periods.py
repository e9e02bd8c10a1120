"""Report periods: day, week, month, quarter, year or a custom range, and the one before (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

KINDS = ("day", "week", "month", "quarter", "year", "custom")


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before (for a custom range: as many days before)."""
        if self.kind == "custom" or self.kind == "day" or self.kind == "week":
            length = timedelta(days=self.days)
            return Period(self.kind, self.start - length, self.end - length)
        return period_of(self.kind, self.start - timedelta(days=1))

    def following(self) -> Period:
        """The period of the same kind just after (for a custom range: as many days after)."""
        if self.kind == "custom" or self.kind == "day" or self.kind == "week":
            length = timedelta(days=self.days)
            return Period(self.kind, self.start + length, self.end + length)
        return period_of(self.kind, self.end + timedelta(days=1))

    def year_before(self) -> Period:
        """The same period a year earlier: the month, quarter or year before by a year, the same
        date, the week 52 weeks before (Monday to Sunday again), a custom range moved by a year
        (29 February becomes the 28th)."""
        if self.kind in ("month", "quarter", "year"):
            return period_of(self.kind, _a_year_before(self.start))
        if self.kind == "week":
            return Period(self.kind, self.start - timedelta(weeks=52), self.end - timedelta(weeks=52))
        return Period(self.kind, _a_year_before(self.start), _a_year_before(self.end))

    def label_vi(self) -> str:
        if self.kind == "day":
            return f"Ngày {self.start:%d/%m/%Y}"
        if self.kind == "month":
            return f"Tháng {self.start.month:02d}/{self.start.year}"
        if self.kind == "quarter":
            return f"Quý {(self.start.month - 1) // 3 + 1}/{self.start.year}"
        if self.kind == "year":
            return f"Năm {self.start.year}"
        return f"Từ {self.start:%d/%m/%Y} đến {self.end:%d/%m/%Y}"

    def label_en(self) -> str:
        if self.kind == "day":
            return f"{self.start:%d/%m/%Y}"
        if self.kind == "month":
            return f"{self.start:%m/%Y}"
        if self.kind == "quarter":
            return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start:%d/%m/%Y} – {self.end:%d/%m/%Y}"


def period_of(kind: str, anchor: date) -> Period:
    """The day, week (Monday to Sunday), month, quarter or year that holds ``anchor``."""
    if kind == "day":
        return Period(kind, anchor, anchor)
    if kind == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return Period(kind, start, start + timedelta(days=6))
    if kind == "month":
        start = anchor.replace(day=1)
        return Period(kind, start, _next_month(start) - timedelta(days=1))
    if kind == "quarter":
        start = anchor.replace(month=(anchor.month - 1) // 3 * 3 + 1, day=1)
        end = _next_month(_next_month(_next_month(start))) - timedelta(days=1)
        return Period(kind, start, end)
    if kind == "year":
        return Period(kind, date(anchor.year, 1, 1), date(anchor.year, 12, 31))
    raise ValueError(f"period must be one of {', '.join(KINDS[:-1])} (or from/to), not {kind!r}")


PERIOD_YEARS = (1970, 2199)  # beyond, a period's UTC bounds or the one before it overflow


def check_years(*days: date) -> None:
    """ValueError for a day outside PERIOD_YEARS (the year 1 or 9999 would overflow on its way
    to UTC+7 or to the period before it)."""
    for day in days:
        if not PERIOD_YEARS[0] <= day.year <= PERIOD_YEARS[1]:
            raise ValueError(f"{day:%d/%m/%Y}: dates lie between {PERIOD_YEARS[0]} and {PERIOD_YEARS[1]}")


def parse_period(kind: str | None, at: date | None, start: date | None, end: date | None, today: date) -> Period:
    """From query parameters: ``from``/``to`` make a custom range; otherwise kind + anchor date."""
    if start is not None or end is not None:
        first = start or end or today
        last = end or today
        check_years(first, last)
        if first > last:
            raise ValueError(f"from ({first:%d/%m/%Y}) is after to ({last:%d/%m/%Y})")
        return Period("custom", first, last)
    check_years(at or today)
    period = period_of(kind or "month", at or today)
    check_years(period.start, period.end)
    return period


def _a_year_before(day: date) -> date:
    return day.replace(year=day.year - 1, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year - 1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
