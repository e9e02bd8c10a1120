"""Pages: counters and officers."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from collector import charts, documents, exports, formats, i18n, reports
from collector.accounts import Accounts
from collector.officers import Officers, local_bounds
from collector.periods import Period
from collector.web.context import (
    Ctx,
    Db,
    ExportUser,
    PageUser,
    Reg,
    lang_of,
    officer_figures,
    period_from,
    visible_counter,
    visible_officer,
    visible_unit,
)
from collector.web.pages.common import (
    RECENT_PER_PAGE,
    download,
    export,
    files,
    office_hours,
    page_number,
    page_vars,
    pdf_or_503,
    period_vars,
    render,
    stamp,
)

router = APIRouter()


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, unit: str = "", counter: str = ""
) -> HTMLResponse:
    """A unit's or a counter's figures side by side: the period, the one before it, and the same
    period a year before (this month, last month, this month last year), with the changes."""
    if bool(unit) == bool(counter):
        raise HTTPException(422, "name a unit or a counter to compare")
    if unit:
        visible_unit(me, registry, unit)
        name = registry.units[unit].name
    else:
        visible_counter(me, registry, counter)
        name = registry.counters[counter].name
    lang = lang_of(request)
    period = period_from(ctx, request)
    periods: list[Period] = []
    for candidate in (period, period.previous(), period.year_before()):  # a year: the one before is a year before
        if all((candidate.start, candidate.end) != (p.start, p.end) for p in periods):
            periods.append(candidate)

    def summary(p: Period) -> reports.Summary:
        if unit:
            return reports.summarise_unit(db, registry, unit, p.start, p.end)
        return reports.summarise_counter(db, registry, counter, p.start, p.end)

    columns: list[dict[str, Any]] = [
        {"label": p.label_vi() if lang == "vi" else p.label_en(), "s": summary(p), "period": p} for p in periods
    ]
    counters = registry.counters_under(unit) if unit else [counter]

    def started_before(p: Period) -> bool:
        """Whether any rating at all came before the period (else its first weeks had no kiosks)."""
        return any(
            c.n for c in db.counts(counters, p.start - timedelta(days=3650), p.start - timedelta(days=1), by="counter")
        )

    notes = []
    for column in columns[1:]:  # a period with no data, or data from part of it, is said, not silently compared
        points = column["s"].series.points
        first = next((pt for pt in points if pt.total or pt.flagged), None)
        if first is None:
            notes.append(i18n.text("compare_empty", lang).format(label=column["label"]))
        elif first is not points[0] and not started_before(column["period"]):
            since = formats.day(first.period) if first.by == "day" else f"{first.period[5:]}/{first.period[:4]}"
            notes.append(i18n.text("compare_partial", lang).format(label=column["label"], since=since))
    return render(
        ctx,
        request,
        "compare.html",
        me,
        registry,
        name=name,
        target={"unit": unit} if unit else {"counter": counter},
        back=f"/units/{unit}" if unit else f"/counters/{counter}",
        columns=columns,
        notes=notes,
        **period_vars(request, period),
    )


@router.get("/counters/{counter}", response_class=HTMLResponse)
def counter_page(counter: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    visible_counter(me, registry, counter)
    lang = lang_of(request)
    period = period_from(ctx, request)
    summary = reports.summarise_counter(db, registry, counter, period.start, period.end, tz=ctx.settings.tz)
    previous = reports.summarise_counter(db, registry, counter, period.previous().start, period.previous().end)
    start, end = local_bounds(period.start, period.end, ctx.settings.tz)
    page = page_number(request)
    recent = reports.ratings_between(
        db, [counter], start, end, limit=RECENT_PER_PAGE, offset=(page - 1) * RECENT_PER_PAGE
    )
    _, officer_rows = documents.officers_table(Officers(db, ctx.settings.tz), [counter], period, lang)
    kiosks = reports.kiosk_rows(
        db,
        registry,
        units=frozenset([registry.counters[counter].unit]),
        office=office_hours(ctx),
        tz=ctx.settings.tz,
        day_from=period.start,
        day_to=period.end,
        now=datetime.now(UTC),
        silent_min=ctx.settings.alerts.silent_min,
    )
    unit = registry.counters[counter].unit
    return render(
        ctx,
        request,
        "counter.html",
        me,
        registry,
        c=summary,
        prev=previous,
        path=[u for u in registry.path(unit) if me.sees_unit(u.id)],
        chart=charts.rate_chart(documents.chart_points(summary), title=i18n.text("by_day", lang), lang=lang),
        score_chart=charts.score_chart(summary.by_score, i18n.SCORE_LABELS[lang], lang=lang),
        heat=charts.heat_chart(
            reports.heat_grid(db, [counter], start, end, ctx.settings.tz),
            weekdays=i18n.WEEKDAYS[lang],
            title=i18n.text("heatmap", lang),
            unhappy_label=i18n.SCORE_LABELS[lang][1],
            lang=lang,
        ),
        officers=officer_rows,
        kiosks=[k for k in kiosks if k["counter"] == counter],
        recent=recent,
        pager=page_vars(request, page, RECENT_PER_PAGE, summary.total + summary.flagged),
        tz=ctx.settings.tz,
        **period_vars(request, period),
    )


@router.get("/counters/{counter}/days.{kind}", **files("csv", "xlsx", what="Figures per day"))
def counter_export(
    counter: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg
) -> Response:
    visible_counter(me, registry, counter)
    period = period_from(ctx, request)
    summary = reports.summarise_counter(db, registry, counter, period.start, period.end)
    table = documents.counter_days_table(summary, lang_of(request))
    return export(request, me, db, table, f"{counter}-{stamp(period)}", kind, f"counter:{counter}", period)


@router.get("/counters/{counter}/report.pdf", **files("pdf", what="The counter's report"))
def counter_report(counter: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    visible_counter(me, registry, counter)
    period = period_from(ctx, request)
    summary = reports.summarise_counter(db, registry, counter, period.start, period.end, tz=ctx.settings.tz)
    previous = reports.summarise_counter(db, registry, counter, period.previous().start, period.previous().end)
    table, _ = documents.officers_table(Officers(db, ctx.settings.tz), [counter], period, "vi")
    Accounts(db).audit(me.username, "export_pdf", f"counter:{counter}", period.label_vi())
    data = pdf_or_503(
        lambda: exports.report_pdf(
            heading=documents.report_heading(f"{summary.name} — {summary.unit.name}", period, ctx.today()),
            figures=documents.key_figures(summary, previous, ctx.settings.tz),
            chart_title="Tỷ lệ hài lòng theo ngày",
            chart=documents.chart_points(summary),
            table=table,
            notes=documents.definitions("vi"),
        )
    )
    return download(data, f"bao-cao-{counter}-{stamp(period)}.pdf", "pdf")


@router.get("/officers/{officer}", response_class=HTMLResponse)
def officer_page(officer: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    book = Officers(db, ctx.settings.tz)
    person = visible_officer(me, book, officer)
    period = period_from(ctx, request)
    total, per_counter = officer_figures(me, registry, book, officer, period.start, period.end)
    rows = [(registry.counters[c], figures) for c, figures in per_counter.items()]
    return render(
        ctx,
        request,
        "officer.html",
        me,
        registry,
        officer=person,
        unit=registry.units[person.unit],
        s=total,
        rows=rows,
        # only duties at counters the reader sees (an officer may have served elsewhere)
        duties=[d for d in book.duties(officer=officer, limit=50) if me.sees_counter(registry, d.counter)],
        counter_names={c.id: c.name for c in registry.counters.values()},
        tz=ctx.settings.tz,
        **period_vars(request, period),
    )
