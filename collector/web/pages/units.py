"""Pages: overview and units."""

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from collector import charts, documents, exports, i18n, reports
from collector.accounts import Accounts, Principal
from collector.alerts import AlertBook
from collector.anystore import Store
from collector.periods import Period
from collector.registry import Registry
from collector.web.context import (
    Ctx,
    Db,
    ExportUser,
    PageUser,
    Reg,
    WebContext,
    lang_of,
    period_from,
    visible_unit,
)
from collector.web.pages.common import SORT_KEYS, download, export, files, pdf_or_503, period_vars, render, stamp

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    period = period_from(ctx, request)
    return _unit_page(request, me, ctx, db, registry, me.unit, period, overview=True)


@router.get("/units/{unit}", response_class=HTMLResponse)
def unit_page(unit: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    visible_unit(me, registry, unit)
    return _unit_page(request, me, ctx, db, registry, unit, period_from(ctx, request))


def _unit_page(
    request: Request,
    me: Principal,
    ctx: WebContext,
    db: Store,
    registry: Registry,
    unit: str,
    period: Period,
    overview: bool = False,
) -> HTMLResponse:
    lang = lang_of(request)
    sort = request.query_params.get("sort", "name")
    sort = sort if sort in SORT_KEYS else "name"
    desc = request.query_params.get("dir") == "desc"
    summary = reports.summarise_unit(db, registry, unit, period.start, period.end, tz=ctx.settings.tz)
    previous = reports.summarise_unit(db, registry, unit, period.previous().start, period.previous().end)
    _, rows = documents.unit_table(db, registry, unit, period, lang, sort, desc, now=summary, before=previous)
    points = documents.chart_points(summary)
    book = AlertBook(db, ctx.settings)
    open_alerts = book.alerts(frozenset(registry.subtree(unit)), open_only=True)
    kiosk_rows = [
        k
        for k in reports.kiosk_health(db, registry)
        if registry.counters[k["counter"]].unit in set(registry.subtree(unit))
    ]
    return render(
        ctx,
        request,
        "unit.html",
        me,
        registry,
        unit=registry.units[unit],
        s=summary,
        prev=previous,
        rows=rows,
        sort=sort,
        desc=desc,
        overview=overview,
        path=[u for u in registry.path(unit) if me.sees_unit(u.id)],
        chart=charts.rate_chart(
            points, title=i18n.text("by_day" if summary.series.by == "day" else "by_month", lang), lang=lang
        ),
        score_chart=charts.score_chart(summary.by_score, i18n.SCORE_LABELS[lang], lang=lang),
        alerts=open_alerts[:10],
        alerts_total=len(open_alerts),
        offline=[k for k in kiosk_rows if k["state"] == "offline"],
        late=reports.late_arrivals(db, registry, unit),
        tz=ctx.settings.tz,
        units=registry.units,
        form_notes=documents.page_form_notes(ctx.settings, db, registry, unit, period, summary, lang),
        **period_vars(request, period),
    )


@router.get("/units/{unit}/table.{kind}", **files("csv", "xlsx", what="The unit's table"))
def unit_table_export(
    unit: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg
) -> Response:
    visible_unit(me, registry, unit)
    period = period_from(ctx, request)
    table, _ = documents.unit_table(db, registry, unit, period, lang_of(request))
    return export(request, me, db, table, f"{unit}-{stamp(period)}", kind, f"unit:{unit}", period)


@router.get(
    "/units/{unit}/three-level.{kind}",
    **files("xlsx", "pdf", what="The three-level form"),
)
def three_level(unit: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    visible_unit(me, registry, unit)
    if kind not in ("xlsx", "pdf"):  # before the audit: a made-up kind is no export
        raise HTTPException(404, "the three-level form is .xlsx or .pdf")
    table = documents.three_level_form(ctx.settings, db, registry, unit, period_from(ctx, request), ctx.today())
    Accounts(db).audit(me.username, f"export_three_level_{kind}", f"unit:{unit}", table.heading[2])
    name = f"bao-cao-3-muc-{unit}-{stamp(period_from(ctx, request))}"
    if kind == "xlsx":
        return download(exports.three_level_xlsx(table), f"{name}.xlsx", "xlsx")
    if kind == "pdf":
        return download(pdf_or_503(lambda: exports.three_level_pdf(table)), f"{name}.pdf", "pdf")
    raise HTTPException(404, "the three-level form is .xlsx or .pdf")


@router.get("/units/{unit}/report.pdf", **files("pdf", what="The unit's report"))
def unit_report(unit: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    visible_unit(me, registry, unit)
    period = period_from(ctx, request)
    Accounts(db).audit(me.username, "export_pdf", f"unit:{unit}", period.label_vi())
    data, _ = pdf_or_503(lambda: documents.unit_report_pdf(db, registry, unit, period, ctx.today(), tz=ctx.settings.tz))
    return download(data, f"bao-cao-{unit}-{stamp(period)}.pdf", "pdf")
