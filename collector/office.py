"""Office hours (pure): when a one-stop department receives citizens, and uptime inside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]


def _parse_span(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"office hours {text!r}: write them as HH:MM-HH:MM") from None
    if end <= start:
        raise ValueError(f"office hours {text!r}: the end must be after the start")
    return start, end


@dataclass(frozen=True)
class OfficeHours:
    """Weekdays 0 (Monday) .. 6 and the opening spans of each such day, in local time."""

    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    spans: tuple[str, ...] = ("07:30-11:30", "13:30-17:00")
    _parsed: tuple[tuple[time, time], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if any(d not in range(7) for d in self.weekdays):
            raise ValueError("office weekdays are 0 (Monday) to 6 (Sunday)")
        object.__setattr__(self, "_parsed", tuple(_parse_span(s) for s in self.spans))

    @property
    def span_times(self) -> tuple[tuple[time, time], ...]:
        """The opening spans as (start, end) local times."""
        return self._parsed

    def intervals(self, day_from: date, day_to: date, tz: ZoneInfo) -> list[Interval]:
        out = []
        day = day_from
        while day <= day_to:
            if day.weekday() in self.weekdays:
                for start, end in self._parsed:
                    out.append(
                        (
                            datetime.combine(day, start, tz).astimezone(UTC),
                            datetime.combine(day, end, tz).astimezone(UTC),
                        )
                    )
            day += timedelta(days=1)
        return out

    def is_open(self, moment: datetime, tz: ZoneInfo) -> bool:
        local = moment.astimezone(tz)
        return local.weekday() in self.weekdays and any(s <= local.time() < e for s, e in self._parsed)

    def opened_at(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """Start of the opening span that holds ``moment`` (None when closed)."""
        local = moment.astimezone(tz)
        if local.weekday() not in self.weekdays:
            return None
        for start, end in self._parsed:
            if start <= local.time() < end:
                return datetime.combine(local.date(), start, tz).astimezone(UTC)
        return None


def online_intervals(transitions: Sequence[tuple[str, datetime]], until: datetime) -> list[Interval]:
    """From (state, at) changes in time order, the intervals the kiosk was online."""
    out = []
    since: datetime | None = None
    for state, at in transitions:
        if state == "online" and since is None:
            since = at
        elif state == "offline" and since is not None:
            out.append((since, at))
            since = None
    if since is not None and since < until:
        out.append((since, until))
    return out


def overlap_s(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    total = 0.0
    for s1, e1 in a:
        for s2, e2 in b:
            start, end = max(s1, s2), min(e1, e2)
            if end > start:
                total += (end - start).total_seconds()
    return total


def uptime_share(
    transitions: Sequence[tuple[str, datetime]], office: Sequence[Interval], now: datetime
) -> float | None:
    """Share of office time (up to ``now``) the kiosk was online; None with no office time yet."""
    past = [(s, min(e, now)) for s, e in office if s < now]
    open_s = sum((e - s).total_seconds() for s, e in past)
    if open_s <= 0:
        return None
    return overlap_s(online_intervals(transitions, now), past) / open_s
