"""Office hours (pure): when a one-stop department receives citizens. The collector's ``[office]``
uses them for alerts and uptime; a kiosk's ``[office]`` (kiosk.toml or remote settings) for when
an update may restart it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
WEEKDAY = {"low": 0, "high": 6, "above": None, "choices": (), "length": None}  # section limits: 0 Monday .. 6 Sunday


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError when there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"time zone {name!r} is unknown (e.g. {DEFAULT_TIMEZONE})") from None


def check_hours(
    weekdays: tuple[int, ...] | None, spans: tuple[str, ...] | None, timezone: str | None, *, resolve: bool = False
) -> None:
    """ValueError when given values cannot make office hours (for settings sections). The zone is
    looked up when ``resolve`` or when weekdays use it: a system without a tz database still starts
    with kiosk.toml's default."""
    OfficeHours(weekdays or (), spans or ())
    if timezone is not None and len(timezone) > 64:
        raise ValueError("a time zone name is at most 64 characters")
    if timezone is not None and (weekdays or resolve):
        zone(timezone)


_SPAN = re.compile(r"\A\s*([01][0-9]|2[0-3]):([0-5][0-9])\s*-\s*([01][0-9]|2[0-3]):([0-5][0-9])\s*\Z", re.ASCII)


def _parse_span(text: str) -> tuple[time, time]:
    """``HH:MM-HH:MM`` in local time, nothing else (no seconds, no UTC offset: the zone is the
    office's)."""
    found = _SPAN.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"office hours {str(text)[:40]!r}: write them as HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    start, end = time(h1, m1), time(h2, m2)
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
