"""Office hours (pure): when a one-stop department receives citizens, and uptime inside them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kiosk.hours import Interval, OfficeHours

__all__ = ["Interval", "OfficeHours", "online_intervals", "overlap_s", "uptime_share"]


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
    """Share of office time (up to ``now``, from the kiosk's first status on) the kiosk was online;
    None with no such office time yet, or no status ever. Office time before the kiosk was
    installed is not downtime: a kiosk installed this morning is not 2 % up over the month."""
    if not transitions:
        return None
    installed = min(at for _, at in transitions)
    past = [(max(s, installed), min(e, now)) for s, e in office if s < now and e > installed]
    open_s = sum((e - s).total_seconds() for s, e in past)
    if open_s <= 0:
        return None
    return overlap_s(online_intervals(transitions, now), past) / open_s
