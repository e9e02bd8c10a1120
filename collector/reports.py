"""Reports: summaries per counter and unit subtree from the roll-ups, and what the pages read."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from collector.anystore import Store
from collector.exports import ThreeLevelRow, three_levels
from collector.office import OfficeHours, uptime_share
from collector.officers import NOBODY, Officers, name_key
from collector.registry import Registry
from collector.store import Count, KioskBacklog, RatingStore, now_text
from kiosk.scores import SCORES, average_score, satisfaction_index, satisfaction_rate
from kiosk.wire import format_time, parse_time

MAX_DAY_SERIES = 93  # a quarter; longer periods get a monthly series


@dataclass(frozen=True)
class Figures:
    """The figures of a set of ratings: how many, per score, the satisfaction rate, the average
    (1–4) and the index (0–100), exact (``to_dict`` rounds them as the API gives them); with
    ``flagged`` (presses refused, counted apart) and ``unsynced`` (ratings pressed while the
    kiosk's clock was not synchronised, whose time is unverified) where they were counted."""

    total: int
    by_score: dict[str, int]  # "1" … "4", as the API names them
    satisfaction_rate: float | None
    average: float | None
    index: float | None
    flagged: int | None = None
    unsynced: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """As the API gives them: rate to 4 decimals, average to 3, index to 1. Pages and files
        format the exact values (rounding a rounded rate again showed 78,9 % as 79,0 %)."""
        out: dict[str, Any] = {
            "total": self.total,
            "by_score": dict(self.by_score),
            "satisfaction_rate": None if self.satisfaction_rate is None else round(self.satisfaction_rate, 4),
            "average": None if self.average is None else round(self.average, 3),
            "index": None if self.index is None else round(self.index, 1),
        }
        if self.flagged is not None:
            out["flagged"] = self.flagged
        if self.unsynced is not None:
            out["unsynced"] = self.unsynced
        return out


def figures(counts: Iterable[Count]) -> Figures:
    """From roll-up counts: flagged presses counted apart, and how many had an unverified time."""
    by_score = dict.fromkeys(SCORES, 0)
    flagged = 0
    unsynced = 0
    for c in counts:
        if c.flagged:
            flagged += c.n
        else:
            by_score[c.score] += c.n
            unsynced += c.unsynced
    return replace(figures_of(by_score), flagged=flagged, unsynced=unsynced)


def figures_of(by_score: dict[int, int]) -> Figures:
    rate = satisfaction_rate(by_score)
    avg = average_score(by_score)
    index = satisfaction_index(by_score)
    return Figures(
        total=sum(by_score.get(s, 0) for s in SCORES),
        by_score={str(s): by_score.get(s, 0) for s in (1, 2, 3, 4)},
        satisfaction_rate=rate,
        average=avg,
        index=index,
    )


class _FiguresOf:
    """Reading a result's figures as its own: ``summary.total`` for ``summary.figures.total``."""

    figures: Figures

    @property
    def total(self) -> int:
        return self.figures.total

    @property
    def by_score(self) -> dict[str, int]:
        return self.figures.by_score

    @property
    def satisfaction_rate(self) -> float | None:
        return self.figures.satisfaction_rate

    @property
    def average(self) -> float | None:
        return self.figures.average

    @property
    def index(self) -> float | None:
        return self.figures.index

    @property
    def flagged(self) -> int:
        return self.figures.flagged or 0

    @property
    def unsynced(self) -> int:
        return self.figures.unsynced or 0


@dataclass(frozen=True)
class Point(_FiguresOf):
    """One day ("2026-11-03") or month ("2026-11") of a series."""

    by: str  # "day" | "month"
    period: str
    figures: Figures

    @property
    def day(self) -> str | None:
        return self.period if self.by == "day" else None

    @property
    def month(self) -> str | None:
        return self.period if self.by == "month" else None

    def to_dict(self) -> dict[str, Any]:
        return {self.by: self.period, **self.figures.to_dict()}


@dataclass(frozen=True)
class Series:
    """Per day for up to ``MAX_DAY_SERIES`` days, per month beyond (edge months may be partial)."""

    by: str  # "day" | "month"
    points: tuple[Point, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"days" if self.by == "day" else "months": [p.to_dict() for p in self.points]}


def series(store: RatingStore, counters: list[str], day_from: date, day_to: date) -> Series:
    by = "day" if (day_to - day_from).days < MAX_DAY_SERIES else "month"
    per_period: dict[str, list[Count]] = defaultdict(list)
    for c in store.counts(counters, day_from, day_to, by=by):
        per_period[c.period].append(c)
    periods = []
    day = day_from
    while day <= day_to:
        periods.append(day.isoformat() if by == "day" else day.isoformat()[:7])
        day = day + timedelta(days=1) if by == "day" else (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Series(by, tuple(Point(by, p, figures(per_period.get(p, []))) for p in periods))


@dataclass(frozen=True)
class Child(_FiguresOf):
    """A unit or counter right below a unit, with its figures."""

    kind: str  # "unit" | "counter"
    id: str
    name: str
    level: str | None  # units only
    figures: Figures

    def to_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"kind": self.kind, "id": self.id, "name": self.name}
        if self.kind == "unit":
            head["level"] = self.level
        return {**head, **self.figures.to_dict()}


class Ref(NamedTuple):
    """A unit named in a result: its id and name."""

    id: str
    name: str


@dataclass(frozen=True)
class Summary(_FiguresOf):
    """What a unit's (its whole subtree's) or a counter's figures were over [day_from, day_to]:
    the figures, a series, and for a unit the children; ``completeness`` when asked for."""

    kind: str  # "unit" | "counter"
    id: str
    name: str
    day_from: date
    day_to: date
    figures: Figures
    series: Series
    level: str = ""  # a unit's
    path: tuple[Ref, ...] = ()  # a unit's, from the root
    children: tuple[Child, ...] = ()  # a unit's
    unit: Ref = Ref("", "")  # a counter's unit
    kiosks: tuple[str, ...] = ()  # a counter's
    completeness: dict[str, Any] | None = None

    @property
    def days(self) -> tuple[Point, ...]:
        return self.series.points if self.series.by == "day" else ()

    @property
    def months(self) -> tuple[Point, ...]:
        return self.series.points if self.series.by == "month" else ()

    def to_dict(self) -> dict[str, Any]:
        """The API's answer (CONTRACT.md): unit or counter, its figures, children, series."""
        if self.kind == "unit":
            head: dict[str, Any] = {
                "unit": self.id,
                "name": self.name,
                "level": self.level,
                "path": [{"id": i, "name": n} for i, n in self.path],
            }
        else:
            head = {
                "counter": self.id,
                "name": self.name,
                "unit": {"id": self.unit[0], "name": self.unit[1]},
                "kiosks": list(self.kiosks),
            }
        out = {**head, "from": self.day_from.isoformat(), "to": self.day_to.isoformat(), **self.figures.to_dict()}
        if self.kind == "unit":
            out["children"] = [c.to_dict() for c in self.children]
        out.update(self.series.to_dict())
        if self.completeness is not None:
            out["completeness"] = self.completeness
        return out


@dataclass(frozen=True)
class Completeness:
    """What the kiosks of a subtree still hold: reports are complete up to the press of the oldest
    rating any of them has not yet delivered (an offline kiosk: as it last reported)."""

    pending: tuple[KioskBacklog, ...]

    @property
    def ratings(self) -> int:
        return sum(p.ratings for p in self.pending)

    @property
    def undated(self) -> bool:
        """Some kiosk holds ratings without saying since when (firmware older than backlog.oldest_at)."""
        return any(p.oldest_at is None for p in self.pending)

    @property
    def complete_up_to(self) -> str | None:
        """The oldest press still held by a kiosk; None when none is held or a kiosk did not say."""
        if not self.pending or self.undated:
            return None
        return min(p.oldest_at for p in self.pending if p.oldest_at is not None)

    def missing_before(self, end: str) -> list[KioskBacklog]:
        """Kiosks that may still hold ratings pressed before ``end`` (a UTC contract time)."""
        return [p for p in self.pending if p.oldest_at is None or p.oldest_at < end]

    def to_dict(self, end: str) -> dict[str, Any]:
        return {
            "complete_up_to": self.complete_up_to,
            "pending_ratings": self.ratings,
            "period_complete": not self.missing_before(end),
            "kiosks": [
                {
                    "kiosk": p.kiosk,
                    "state": p.state,
                    "ratings": p.ratings,
                    "oldest_at": p.oldest_at,
                    "reported_at": p.reported_at,
                }
                for p in self.pending
            ],
        }


def completeness(store: RatingStore, registry: Registry, counters: Iterable[str]) -> Completeness:
    """The backlog the kiosks at these counters last reported."""
    wanted = set(counters)
    kiosks = {k.id for k in registry.kiosks.values() if k.counter in wanted}
    return Completeness(tuple(sorted((b for b in store.backlogs() if b.kiosk in kiosks), key=lambda b: b.kiosk)))


def period_end_utc(day_to: date, tz: ZoneInfo) -> str:
    """The first instant after local day ``day_to``, as a UTC contract time."""
    return format_time(datetime.combine(day_to + timedelta(days=1), time(0), tz))


def summarise_counter(
    store: RatingStore,
    registry: Registry,
    counter_id: str,
    day_from: date,
    day_to: date,
    *,
    tz: ZoneInfo | None = None,
) -> Summary:
    """The counter's figures and series; with ``tz``, also how complete the data is (``completeness``)."""
    counter = registry.counter(counter_id)
    unit = registry.unit(counter.unit)
    return Summary(
        kind="counter",
        id=counter.id,
        name=counter.name,
        day_from=day_from,
        day_to=day_to,
        figures=figures(store.counts([counter_id], day_from, day_to, by="counter")),
        series=series(store, [counter_id], day_from, day_to),
        unit=Ref(unit.id, unit.name),
        kiosks=tuple(sorted(k.id for k in registry.kiosks.values() if k.counter == counter_id)),
        completeness=_completeness_of(store, registry, [counter_id], day_to, tz),
    )


def summarise_unit(
    store: RatingStore,
    registry: Registry,
    unit_id: str,
    day_from: date,
    day_to: date,
    *,
    tz: ZoneInfo | None = None,
) -> Summary:
    """The subtree's figures, its children and series; with ``tz``, also ``completeness``."""
    unit = registry.unit(unit_id)
    counters = registry.counters_under(unit_id)
    counts = store.counts(counters, day_from, day_to, by="counter")
    by_counter: dict[str, list[Count]] = defaultdict(list)
    for c in counts:
        by_counter[c.counter].append(c)
    children = [
        Child(
            "unit",
            child.id,
            child.name,
            child.level,
            figures([c for cid in registry.counters_under(child.id) for c in by_counter.get(cid, [])]),
        )
        for child in registry.child_units(unit_id)
    ]
    children += [
        Child("counter", counter.id, counter.name, None, figures(by_counter.get(counter.id, [])))
        for counter in registry.own_counters(unit_id)
    ]
    return Summary(
        kind="unit",
        id=unit.id,
        name=unit.name,
        day_from=day_from,
        day_to=day_to,
        figures=figures(counts),
        series=series(store, counters, day_from, day_to),
        level=unit.level,
        path=tuple(Ref(u.id, u.name) for u in registry.path(unit_id)),
        children=tuple(children),
        completeness=_completeness_of(store, registry, counters, day_to, tz),
    )


def _completeness_of(
    store: RatingStore, registry: Registry, counters: list[str], day_to: date, tz: ZoneInfo | None
) -> dict[str, Any] | None:
    """A summary's ``completeness`` (asked for with ``tz``): what its kiosks still hold at its end."""
    return None if tz is None else completeness(store, registry, counters).to_dict(period_end_utc(day_to, tz))


def late_arrivals(store: RatingStore, registry: Registry, unit_id: str) -> list[dict[str, Any]]:
    """Ratings at the counters under ``unit_id`` that arrived after the monthly report covering
    them was mailed (the unit's own, or an enclosing unit's), per mailed month."""
    counters = registry.counters_under(unit_id)
    out = []
    for mail in store.mails_sent([u.id for u in registry.path(unit_id)]):
        by_score = store.late_arrivals(counters, mail.month, mail.sent_at)
        if by_score:
            out.append(
                {
                    "month": mail.month,
                    "mailed_unit": mail.unit,
                    "mailed_at": mail.sent_at,
                    **figures_of(by_score).to_dict(),
                }
            )
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
                "selftest": status.get("selftest"),  # {"at", "ok", …}: installed and tested at …
                "update": status.get("update"),  # {"version", "state", …}: a release on its way or done
            }
        )
    return out


# --- what the inspectors' pages read besides the roll-ups -------------------------------------


def ratings_between(
    store: Store, counters: list[str], start: str, end: str, *, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """One page of the ratings (and flagged presses) at these counters with pressed_at in
    [start, end), newest first, with whether a snapshot is stored and whether it was reviewed.
    How many there are in all comes from the roll-ups (total + flagged), not from a count of rows."""
    return store.ratings_page(counters, start, end, limit=limit, offset=offset)


def review_queue(
    store: Store,
    counters: list[str],
    start: str,
    end: str,
    *,
    tz: ZoneInfo,
    office: OfficeHours,
    pending_only: bool,
    limit: int,
    offset: int = 0,
    reasons: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], int, int]:
    """One page of the presses an inspector should look at (flagged, clock unsynced, outside office
    hours; only ``reasons`` of collector.sqlshared.REVIEW_REASONS when given), each with its
    ``reasons``; and how many there are in all and not yet reviewed."""
    days, spans = office.weekdays, office.span_times
    total, pending = store.review_queue_size(
        counters, start, end, tz=tz, office_days=days, office_spans=spans, reasons=reasons
    )
    rows = store.review_queue(
        counters,
        start,
        end,
        tz=tz,
        office_days=days,
        office_spans=spans,
        pending_only=pending_only,
        limit=limit,
        offset=offset,
        reasons=reasons,
    )
    for r in rows:
        r["reasons"] = (
            ([f"flag_{r['flag']}"] if r["flag"] else [])
            + (["flag_unsynced"] if r["clock"] == "unsynced" else [])
            + (["flag_after_hours"] if r["after_hours"] else [])
        )
    return rows, total, pending


def rating(store: Store, rating_id: str) -> dict[str, Any] | None:
    return store.rating_with_snapshot(rating_id)


def review(store: Store, rating_id: str, username: str, comment: str) -> None:
    store.review_put(rating_id, username, comment, now_text())


def heat_grid(store: Store, counters: list[str], start: str, end: str, tz: ZoneInfo) -> list[list[tuple[int, int]]]:
    """(accepted ratings, of them "Không hài lòng") per local weekday (0 = Monday) × local hour,
    all of them, counted in SQL."""
    grid = [[(0, 0)] * 24 for _ in range(7)]
    for weekday, hour, n, unhappy in store.heat_counts(counters, start, end, tz=tz):
        was_n, was_unhappy = grid[weekday][hour]
        grid[weekday][hour] = (was_n + n, was_unhappy + unhappy)
    return grid


def ratings_waiting(backlog: Any) -> bool:
    """Whether a status's ``backlog`` says ratings are still on their way (a positive count)."""
    waiting = backlog.get("ratings") if isinstance(backlog, dict) else None
    return isinstance(waiting, int) and not isinstance(waiting, bool) and waiting > 0


def last_rating_at(store: Store, counter: str) -> str | None:
    return store.last_rating_at(counter)


def kiosk_rows(
    store: Store,
    registry: Registry,
    *,
    units: frozenset[str],
    office: OfficeHours,
    tz: ZoneInfo,
    day_from: date,
    day_to: date,
    now: datetime,
    silent_min: int,
) -> list[dict[str, Any]]:
    """Kiosk health for the units given, with uptime in office hours over the period and whether
    the counter has gone silent while the office is open."""
    office_time = office.intervals(day_from, day_to, tz)
    opened = office.opened_at(now, tz)
    rows = []
    for row in kiosk_health(store, registry):
        counter = registry.counters[row["counter"]]
        if counter.unit not in units:
            continue
        history = [(state, parse_time(at)) for state, at in store.transitions(row["kiosk"])]
        row["uptime_office"] = uptime_share(history, office_time, now)
        last = last_rating_at(store, counter.id)
        # As the silent alert judges it: only a kiosk that is online and caught up watches its
        # counter, and only since it came online (collector.alerts.watched_since).
        caught_up = not ratings_waiting(row.get("backlog"))
        online_since = next((at for state, at in reversed(history) if state == "online"), None)
        quiet_since = None
        if opened and row["state"] == "online" and caught_up and online_since is not None:
            quiet_since = max(opened, online_since, parse_time(last)) if last else max(opened, online_since)
        row["silent"] = bool(quiet_since and (now - quiet_since).total_seconds() >= silent_min * 60)
        row["last_rating_at"] = last
        row["unit"] = counter.unit
        rows.append(row)
    return rows


def three_level_rows(
    officers: Officers,
    registry: Registry,
    unit_id: str,
    day_from: date,
    day_to: date,
    neutral_as: str,
    nobody: str,
    *,
    exclude_unsynced: bool = False,
) -> list[ThreeLevelRow]:
    """One row per unit × officer (the unit where the service was given), units in tree order;
    without the ratings whose time is unverified when ``exclude_unsynced``."""
    names = {o.id: o.name for o in officers.officers()}
    rows = []
    for unit in registry.subtree_in_order(unit_id):
        counters = [c.id for c in registry.own_counters(unit)]
        if not counters:
            continue
        found = sorted(
            officers.by_officer(counters, day_from, day_to, exclude_unsynced=exclude_unsynced).items(),
            key=lambda kv: (kv[0] == NOBODY, names.get(kv[0], kv[0])),
        )
        listed = Counter(name_key(names.get(o, o)) for o, _ in found if o != NOBODY)
        for officer_id, by_score in found:
            name = nobody if officer_id == NOBODY else names.get(officer_id, officer_id)
            if officer_id != NOBODY and listed[name_key(name)] > 1:
                name = f"{name} ({officer_id})"  # two rows of one name on a signed form: which is which
            scores = (by_score.get(1, 0), by_score.get(2, 0), by_score.get(3, 0), by_score.get(4, 0))
            rows.append(ThreeLevelRow(registry.units[unit].name, name, three_levels(by_score, neutral_as), scores))
    return rows
