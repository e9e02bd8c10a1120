"""Summaries per counter and per unit subtree, from the daily roll-ups (pure over the counts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from collector.registry import Registry
from collector.store import Count, RatingStore
from kiosk.scores import SCORES, average_score, satisfaction_index, satisfaction_rate

MAX_DAY_SERIES = 93  # a quarter; longer periods get a monthly series


def figures(counts: Iterable[Count]) -> dict[str, Any]:
    """total, by_score, satisfaction_rate, average, index — flagged presses counted apart."""
    by_score = dict.fromkeys(SCORES, 0)
    flagged = 0
    for c in counts:
        if c.flagged:
            flagged += c.n
        else:
            by_score[c.score] += c.n
    rate = satisfaction_rate(by_score)
    avg = average_score(by_score)
    index = satisfaction_index(by_score)
    return {
        "total": sum(by_score.values()),
        "by_score": {str(s): by_score[s] for s in (1, 2, 3, 4)},
        "satisfaction_rate": None if rate is None else round(rate, 4),
        "average": None if avg is None else round(avg, 3),
        "index": None if index is None else round(index, 1),
        "flagged": flagged,
    }


def series(store: RatingStore, counters: list[str], day_from: date, day_to: date) -> dict[str, Any]:
    """Per day for up to ``MAX_DAY_SERIES`` days, per month beyond (edge months may be partial)."""
    by = "day" if (day_to - day_from).days < MAX_DAY_SERIES else "month"
    per_period: dict[str, list[Count]] = defaultdict(list)
    for c in store.counts(counters, day_from, day_to, by=by):
        per_period[c.period].append(c)
    periods = []
    day = day_from
    while day <= day_to:
        periods.append(day.isoformat() if by == "day" else day.isoformat()[:7])
        day = (
            day + timedelta(days=1)
            if by == "day"
            else (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        )
    key = "days" if by == "day" else "months"
    name = "day" if by == "day" else "month"
    return {key: [{name: p, **figures(per_period.get(p, []))} for p in periods]}


def summarise_counter(
    store: RatingStore, registry: Registry, counter_id: str, day_from: date, day_to: date
) -> dict[str, Any]:
    counter = registry.counter(counter_id)
    counts = store.counts([counter_id], day_from, day_to, by="counter")
    unit = registry.unit(counter.unit)
    out = {
        "counter": counter.id,
        "name": counter.name,
        "unit": {"id": unit.id, "name": unit.name},
        "kiosks": sorted(k.id for k in registry.kiosks.values() if k.counter == counter_id),
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        **figures(counts),
    }
    out.update(series(store, [counter_id], day_from, day_to))
    return out


def summarise_unit(
    store: RatingStore, registry: Registry, unit_id: str, day_from: date, day_to: date
) -> dict[str, Any]:
    unit = registry.unit(unit_id)
    counters = registry.counters_under(unit_id)
    counts = store.counts(counters, day_from, day_to, by="counter")
    by_counter: dict[str, list[Count]] = defaultdict(list)
    for c in counts:
        by_counter[c.counter].append(c)
    children = []
    for child in registry.child_units(unit_id):
        child_counts = [c for cid in registry.counters_under(child.id) for c in by_counter.get(cid, [])]
        children.append(
            {
                "kind": "unit",
                "id": child.id,
                "name": child.name,
                "level": child.level,
                **figures(child_counts),
            }
        )
    for counter in registry.own_counters(unit_id):
        children.append(
            {
                "kind": "counter",
                "id": counter.id,
                "name": counter.name,
                **figures(by_counter.get(counter.id, [])),
            }
        )
    out = {
        "unit": unit.id,
        "name": unit.name,
        "level": unit.level,
        "path": [{"id": u.id, "name": u.name} for u in registry.path(unit_id)],
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        **figures(counts),
        "children": children,
    }
    out.update(series(store, counters, day_from, day_to))
    return out


def kiosk_health(store: RatingStore, registry: Registry) -> list[dict[str, Any]]:
    statuses = store.kiosk_statuses()
    gaps: dict[str, int] = defaultdict(int)
    for install in store.installs():
        gaps[install.kiosk] += install.possibly_missing
    out = []
    for kiosk in sorted(registry.kiosks.values(), key=lambda k: k.id):
        status = statuses.get(kiosk.id, {})
        out.append(
            {
                "kiosk": kiosk.id,
                "counter": kiosk.counter,
                "online": status.get("state") == "online",
                "state": status.get("state", "never_seen"),
                "last_seen": status.get("received_at"),
                "backlog": status.get("backlog"),
                "camera": status.get("camera"),
                "clock": status.get("clock"),
                "panel": status.get("panel"),
                "fw": status.get("fw"),
                "uptime_s": status.get("uptime_s"),
                "suppressed_presses": status.get("suppressed_presses"),
                "last_press_at": status.get("last_press_at"),
                "possibly_missing_ratings": gaps.get(kiosk.id, 0),
            }
        )
    return out
