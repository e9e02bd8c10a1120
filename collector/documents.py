"""The documents a unit hands in, built once for the pages, the downloads and the monthly mail:
the children table, the three-level form and the PDF report."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector import charts, exports, formats, i18n, reports
from collector.anystore import Store
from collector.config import CollectorSettings
from collector.officers import NOBODY, Officers
from collector.periods import Period
from collector.registry import Registry
from kiosk import wire


@dataclass(frozen=True)
class UnitRow(reports.Child):
    """A row of a unit's table: a child with its rate the period before, the change and a sparkline."""

    prev_rate: float | None = None
    change: float | None = None
    spark: str = ""


def _count_of(score: int) -> Callable[[UnitRow], Any]:
    return lambda r: r.by_score[str(score)]


SORT_KEYS: dict[str, Callable[[UnitRow], Any]] = {
    "name": lambda r: r.name,
    "total": lambda r: r.total,
    "change": lambda r: r.change,
    "rate": lambda r: r.satisfaction_rate,
    "index": lambda r: r.index,
    **{f"s{score}": _count_of(score) for score in (1, 2, 3, 4)},
}


def unit_table(
    db: Store,
    registry: Registry,
    unit: str,
    period: Period,
    lang: str,
    sort: str = "name",
    desc: bool = False,
    *,
    now: reports.Summary | None = None,
    before: reports.Summary | None = None,
) -> tuple[exports.Table, list[UnitRow]]:
    """The children of a unit (sub-units and its own counters) with figures and the change of rate.
    ``now`` and ``before`` are the unit's summaries for the period and the one before, when the
    caller has them already."""
    now = now or reports.summarise_unit(db, registry, unit, period.start, period.end)
    before = before or reports.summarise_unit(db, registry, unit, period.previous().start, period.previous().end)
    earlier = {c.id: c for c in before.children}
    rows = []
    for child in now.children:
        counters = registry.counters_under(child.id) if child.kind == "unit" else [child.id]
        trend = reports.series(db, counters, period.start, period.end)
        prev_rate = earlier[child.id].satisfaction_rate if child.id in earlier else None
        rate = child.satisfaction_rate
        rows.append(
            UnitRow(
                child.kind,
                child.id,
                child.name,
                child.level,
                child.figures,
                prev_rate=prev_rate,
                change=None if rate is None or prev_rate is None else rate - prev_rate,
                spark=charts.sparkline([p.satisfaction_rate for p in trend.points]),
            )
        )
    key = SORT_KEYS.get(sort, SORT_KEYS["name"])
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    rows = sorted(present, key=key, reverse=desc) + missing  # no data sorts last either way
    labels = i18n.SCORE_LABELS[lang]
    columns = [
        exports.Column(i18n.text("name", lang)),
        exports.Column(i18n.text("kind", lang)),
        exports.Column(i18n.text("total", lang), "int"),
        exports.Column(i18n.text("rate", lang), "rate"),
        exports.Column(i18n.text("index", lang), "decimal"),
    ]
    columns += [exports.Column(labels[s], "int") for s in (4, 3, 2, 1)]
    columns += [exports.Column(i18n.text("previous", lang), "rate"), exports.Column(i18n.text("unsynced", lang), "int")]
    body = [
        [
            r.name,
            i18n.text("unit" if r.kind == "unit" else "counter", lang),
            r.total,
            r.satisfaction_rate,
            r.index,
            *(r.by_score[str(s)] for s in (4, 3, 2, 1)),
            r.prev_rate,
            r.unsynced,
        ]
        for r in rows
    ]
    heading = [f"{registry.units[unit].name}", period.label_vi() if lang == "vi" else period.label_en()]
    table = exports.Table(i18n.text("units", lang), columns, body, heading)
    return table, rows


def chart_points(summary: reports.Summary) -> list[tuple[str, float | None, int]]:
    if summary.series.by == "day":
        return [(formats.day(p.period)[:5], p.satisfaction_rate, p.total) for p in summary.series.points]
    return [(p.period[5:] + "/" + p.period[2:4], p.satisfaction_rate, p.total) for p in summary.series.points]


def counter_days_table(summary: reports.Summary, lang: str) -> exports.Table:
    """A counter's figures per day (per month for a long period), as on its page."""
    labels = i18n.SCORE_LABELS[lang]
    by_day = summary.series.by == "day"
    columns = [
        exports.Column(i18n.text("day" if by_day else "month", lang), "date" if by_day else "month"),
        exports.Column(i18n.text("total", lang), "int"),
        exports.Column(i18n.text("rate", lang), "rate"),
        exports.Column(i18n.text("index", lang), "decimal"),
    ]
    columns += [exports.Column(labels[s], "int") for s in (4, 3, 2, 1)]
    columns += [
        exports.Column(i18n.text("flagged_count", lang), "int"),
        exports.Column(i18n.text("unsynced", lang), "int"),
    ]
    body = [
        [
            date.fromisoformat(p.period if by_day else p.period + "-01"),
            p.total,
            p.satisfaction_rate,
            p.index,
            *(p.by_score[str(s)] for s in (4, 3, 2, 1)),
            p.flagged,
            p.unsynced,
        ]
        for p in summary.series.points
    ]
    return exports.Table(summary.name[:31], columns, body, [summary.name, summary.unit.name])


@dataclass(frozen=True)
class OfficerRow(reports._FiguresOf):
    """An officer's figures at some counters (``NOBODY``: ratings with nobody on duty)."""

    id: str
    name: str
    figures: reports.Figures


def officers_table(
    book: Officers, counters: list[str], period: Period, lang: str
) -> tuple[exports.Table, list[OfficerRow]]:
    """The officers on duty at these counters in the period, with their figures; nobody last."""
    names = {o.id: o.name for o in book.officers()}
    rows = [
        OfficerRow(
            officer_id,
            i18n.text("nobody", lang) if officer_id == NOBODY else names.get(officer_id, officer_id),
            reports.figures_of(by_score),
        )
        for officer_id, by_score in book.by_officer(counters, period.start, period.end).items()
    ]
    rows.sort(key=lambda r: (r.id == NOBODY, r.name))
    labels = i18n.SCORE_LABELS[lang]
    columns = [
        exports.Column(i18n.text("officer", lang)),
        exports.Column(i18n.text("total", lang), "int"),
        exports.Column(i18n.text("rate", lang), "rate"),
    ]
    columns += [exports.Column(labels[s], "int") for s in (4, 3, 2, 1)]
    body = [[r.name, r.total, r.satisfaction_rate, *(r.by_score[str(s)] for s in (4, 3, 2, 1))] for r in rows]
    return exports.Table(i18n.text("officers", lang), columns, body), rows


def kiosks_table(rows: list[dict[str, Any]], registry: Registry, lang: str, tz: ZoneInfo) -> exports.Table:
    """The kiosks page as a file: states, camera and clock in words, last seen in local time."""
    columns = [
        exports.Column(i18n.text("kiosk", lang)),
        exports.Column(i18n.text("counter", lang)),
        exports.Column(i18n.text("unit", lang)),
        exports.Column("Trạng thái" if lang == "vi" else "State"),
        exports.Column(i18n.text("last_seen", lang), "datetime"),
        exports.Column(i18n.text("backlog", lang), "int"),
        exports.Column(i18n.text("camera", lang)),
        exports.Column(i18n.text("clock", lang)),
        exports.Column(i18n.text("firmware", lang)),
        exports.Column(i18n.text("uptime_office", lang), "rate"),
        exports.Column(i18n.text("silent", lang)),
    ]
    body = [
        [
            k["kiosk"],
            registry.counters[k["counter"]].name,
            registry.units[k["unit"]].name,
            i18n.text(k["state"], lang),
            _local(k["last_seen"], tz),
            (k["backlog"] or {}).get("ratings"),
            i18n.word("camera", k["camera"], lang) if k["camera"] else None,
            i18n.word("clock", k["clock"], lang) if k["clock"] else None,
            k["fw"],
            k["uptime_office"],
            "x" if k["silent"] else "",
        ]
        for k in rows
    ]
    return exports.Table(i18n.text("kiosks", lang), columns, body)


def _local(moment: str | None, tz: ZoneInfo) -> datetime | None:
    """A contract time as a local time without a zone (what a spreadsheet holds), or None."""
    if not moment:
        return None
    try:
        return wire.parse_time(moment).astimezone(tz).replace(tzinfo=None, microsecond=0)
    except ValueError:
        return None


def three_level_form(
    settings: CollectorSettings, db: Store, registry: Registry, unit: str, period: Period, today: date
) -> exports.Table:
    """The official three-level form of a unit and everything below it, one row per unit × officer.
    It says how many ratings have an unverified time, and whether they are counted
    (``[reports] three_level_exclude_unsynced``)."""
    exclude = settings.reports.three_level_exclude_unsynced
    rows = reports.three_level_rows(
        Officers(db, settings.tz),
        registry,
        unit,
        period.start,
        period.end,
        settings.reports.neutral_as,
        i18n.text("nobody", "vi"),
        exclude_unsynced=exclude,
    )
    heading = exports.form_heading(registry.units[unit].name, period.label_vi(), period.start, period.end, today)
    summary = reports.figures(db.counts(registry.counters_under(unit), period.start, period.end, by="counter"))
    if summary.unsynced:
        key = "form_unsynced_left_out" if exclude else "form_unsynced_counted"
        heading.append(i18n.text(key, "vi").format(n=formats.number(summary.unsynced)))
    # the form's own rows hold what it counts (the store is not asked twice)
    scores = {score: sum(r.scores[score - 1] for r in rows) for score in (1, 2, 3, 4)}
    notes = form_notes(settings.reports.neutral_as, summary, scores, "vi")
    return exports.three_level_table(rows, heading, notes)


def page_form_notes(
    settings: CollectorSettings,
    db: Store,
    registry: Registry,
    unit: str,
    period: Period,
    summary: reports.Figures | reports.Summary,
    lang: str,
) -> list[str]:
    """The three-level form's notes for the unit page (the same as under the form)."""
    return form_notes(
        settings.reports.neutral_as, summary, form_scores(settings, db, registry, unit, period, summary), lang
    )


def form_scores(
    settings: CollectorSettings,
    db: Store,
    registry: Registry,
    unit: str,
    period: Period,
    summary: reports.Figures | reports.Summary,
) -> dict[int, int]:
    """The ratings per score the three-level form counts: the page's, or without those of an
    unverified time when ``[reports] three_level_exclude_unsynced`` leaves them out."""
    if not (settings.reports.three_level_exclude_unsynced and summary.unsynced):
        return {int(k): v for k, v in summary.by_score.items()}
    scores = dict.fromkeys((1, 2, 3, 4), 0)
    per_officer = Officers(db, settings.tz).by_officer(
        registry.counters_under(unit), period.start, period.end, exclude_unsynced=True
    )
    for by_score in per_officer.values():
        for score, n in by_score.items():
            scores[score] += n
    return scores


def form_rate(levels: list[int]) -> float | None:
    """The three-level form's satisfaction rate: (rất hài lòng + hài lòng) / all, neutral mapped."""
    total = sum(levels)
    return (levels[0] + levels[1]) / total if total else None


def form_notes(
    neutral_as: str, summary: reports.Figures | reports.Summary, scores: dict[int, int], lang: str
) -> list[str]:
    """What stands under the three-level form: how «Bình thường» was counted (of the ratings the
    form counts, ``scores``), the form's rate next to the dashboard's four-level rate (so that the
    two never differ without saying why)."""
    levels = list(exports.three_levels(scores, neutral_as))
    return [
        i18n.text(f"form_neutral_{neutral_as}", lang).format(n=formats.number(scores[2], lang)),
        i18n.text("form_rate", lang).format(
            rate=formats.percent(form_rate(levels), lang), rate4=formats.percent(summary.satisfaction_rate, lang)
        ),
    ]


def report_heading(name: str, period: Period, today: date) -> list[str]:
    return [
        "BÁO CÁO MỨC ĐỘ HÀI LÒNG CỦA NGƯỜI DÂN, TỔ CHỨC",
        f"Đơn vị: {name}",
        f"Kỳ báo cáo: {period.label_vi()}"
        + ("" if period.kind == "custom" else f" (từ {formats.day(period.start)} đến {formats.day(period.end)})"),
        f"Ngày lập: {formats.day(today)}" + exports.ongoing_note(period.end, today),
    ]


def key_figures(now: reports.Summary, before: reports.Summary, tz: ZoneInfo | None = None) -> list[tuple[str, str]]:
    labels = i18n.SCORE_LABELS["vi"]
    return [
        ("Tổng số lượt đánh giá", formats.number(now.total)),
        ("Tỷ lệ hài lòng", formats.percent(now.satisfaction_rate)),
        (
            "Kỳ trước",
            f"{formats.percent(before.satisfaction_rate)} "
            f"({formats.change(now.satisfaction_rate, before.satisfaction_rate)})",
        ),
        ("Chỉ số hài lòng (0–100)", formats.decimal(now.index)),
        *((labels[s], formats.number(now.by_score[str(s)])) for s in (4, 3, 2, 1)),
        ("Lượt bấm bị từ chối (không tính)", formats.number(now.flagged)),
        (i18n.text("unsynced", "vi"), formats.number(now.unsynced)),
        *(
            [(i18n.text("completeness", "vi"), completeness_text(now.completeness, tz))]
            if tz and now.completeness is not None
            else []
        ),
    ]


def completeness_text(done: dict[str, Any], tz: ZoneInfo, lang: str = "vi") -> str:
    """ "Data complete up to …" for a summary's ``completeness``, in words."""
    kiosks = formats.number(len(done["kiosks"]), lang)
    pending = formats.number(done["pending_ratings"], lang)
    if not done["kiosks"]:
        return i18n.text("complete_all", lang)
    if done["complete_up_to"]:
        at = formats.moment(done["complete_up_to"], tz)
        return i18n.text("complete_up_to", lang).format(at=at, n=pending, k=kiosks)
    return i18n.text("complete_unknown", lang).format(n=pending, k=kiosks)


def unit_report_pdf(
    db: Store, registry: Registry, unit: str, period: Period, today: date, *, tz: ZoneInfo | None = None
) -> tuple[bytes, reports.Summary]:
    """A unit's PDF report for the period, and the summary it was made from; with ``tz``, the
    report says up to when its data is complete."""
    summary = reports.summarise_unit(db, registry, unit, period.start, period.end, tz=tz)
    previous = reports.summarise_unit(db, registry, unit, period.previous().start, period.previous().end)
    table, _ = unit_table(db, registry, unit, period, "vi", now=summary, before=previous)
    pdf = exports.report_pdf(
        heading=report_heading(registry.units[unit].name, period, today),
        figures=key_figures(summary, previous, tz),
        chart_title="Tỷ lệ hài lòng theo kỳ",
        chart=chart_points(summary),
        table=table,
        notes=definitions("vi"),
    )
    return pdf, summary


def definitions(lang: str) -> list[str]:
    """How the rate, the index and the average are counted, as the pages and documents say it."""
    return [i18n.text(key, lang) for key in ("def_rate", "def_index", "def_average")]
