"""The inspectors' pages: server-rendered HTML, readable on a phone and a desk screen.

Every table a page shows is built once by a ``*_table`` function and used for the page and for
its CSV/XLSX export, so the files carry the same numbers as the screen.
"""

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Path, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from collector import charts, documents, exports, i18n, reports
from collector.accounts import ROLES, Accounts, AuthError, Principal, TooMany
from collector.alerts import RULE_KEYS, AlertBook, RuleError
from collector.anystore import Store
from collector.errors import CollectorError, NotFound, RegistryError
from collector.fleet import FleetCA
from collector.office import OfficeHours
from collector.officers import NOBODY, Officers, RosterError, local_bounds, parse_local
from collector.periods import KINDS, Period
from collector.registry import Registry
from collector.remotesettings import FORM_KEYS, SettingsBook, SettingsFormError, from_form, scope_key
from collector.sqlshared import REVIEW_REASONS
from collector.store import now_text
from collector.web.context import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Ctx,
    Db,
    ExportUser,
    PageUser,
    Reg,
    WebContext,
    base_vars,
    check_csrf,
    client_address,
    lang_of,
    need,
    officer_figures,
    period_from,
    visible_audit,
    visible_counter,
    visible_officer,
    visible_unit,
)
from kiosk import wire
from kiosk.remote import merge as merge_layers

router = APIRouter()
SORT_KEYS = ("name", "total", "rate", "index", "s4", "s3", "s2", "s1", "change")
RECENT_PER_PAGE = 50
FLAGGED_PER_PAGE = 200
# A row number in a path (an alert, a duty): what a 64-bit store column holds, else 422 before
# the store is asked (a larger number made the store raise).
RowId = Annotated[int, Path(ge=1, le=wire.MAX_INT)]


def render(
    ctx: WebContext,
    request: Request,
    template: str,
    me: Principal | None,
    registry: Registry | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    if isinstance(values.get("error"), str):  # a message of the code: in the reader's language
        values["error"] = i18n.error(values["error"], lang_of(request))
    return ctx.templates.TemplateResponse(
        request, template, {**base_vars(request, me, registry), **values}, status_code=status
    )


def period_vars(request: Request, period: Period) -> dict[str, Any]:
    lang = lang_of(request)
    base = {k: v for k, v in request.query_params.items() if k not in ("period", "at", "from", "to", "sort", "dir")}

    def query_of(other: Period) -> str:
        if other.kind == "custom":
            return urlencode({**base, "from": other.start.isoformat(), "to": other.end.isoformat()})
        return urlencode({**base, "period": other.kind, "at": other.start.isoformat()})

    following = period.following()
    return {
        "period": period,
        # this period alone, for a link to another page about it
        "period_query": urlencode(
            {"from": period.start.isoformat(), "to": period.end.isoformat()}
            if period.kind == "custom"
            else {"period": period.kind, "at": period.start.isoformat()}
        ),
        "period_label": period.label_vi() if lang == "vi" else period.label_en(),
        "kinds": KINDS[:-1],
        "prev_query": query_of(period.previous()),
        # no "next" into a future with nothing in it
        "next_query": query_of(following) if following.start <= request.app.state.web.today() else None,
        "query": request.url.query,
    }


def page_vars(request: Request, page: int, per_page: int, total: int) -> dict[str, Any]:
    """A page of a list that is longer than one screen: which rows it shows, of how many, and the
    links to the pages before and after (every row can be reached, none is silently cut)."""
    base = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])
    return {
        "page": page,
        "first": (page - 1) * per_page + 1 if total else 0,
        "last": min(page * per_page, total),
        "of": total,
        "newer": f"?{base}&page={page - 1}" if page > 1 else None,
        "older": f"?{base}&page={page + 1}" if page * per_page < total else None,
    }


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= 1_000_000:
        raise HTTPException(422, f"page {text!r}: a whole number from 1")
    return int(text)


def _download(data: bytes, name: str, kind: str) -> Response:
    types = {
        "csv": "text/csv; charset=utf-8",
        "pdf": "application/pdf",
        "toml": "application/toml; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    return Response(
        data, media_type=types[kind], headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    )


def _export(me: Principal, db: Store, table: exports.Table, name: str, kind: str, target: str) -> Response:
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404, "exports are .csv or .xlsx")
    Accounts(db).audit(me.username, f"export_{kind}", target, table.title)
    if kind == "csv":
        return _download(exports.to_csv(table), f"{name}.csv", "csv")
    if kind == "xlsx":
        return _download(exports.to_xlsx(table), f"{name}.xlsx", "xlsx")
    raise HTTPException(404, "exports are .csv or .xlsx")


# --- log in and out ------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, ctx: Ctx, next: str = "/") -> HTMLResponse:
    return render(ctx, request, "login.html", None, None, next=_safe_next(next), error="")


@router.post("/login")
def login(
    request: Request,
    ctx: Ctx,
    db: Db,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    accounts = Accounts(db)
    try:
        accounts.verify(username.strip(), password, address=client_address(request))
    except AuthError as exc:
        lang = lang_of(request)
        message = i18n.text("wrong_login", lang) if "wrong" in str(exc) else str(exc)
        status = 429 if isinstance(exc, TooMany) else 401
        return render(ctx, request, "login.html", None, None, status=status, next=_safe_next(next), error=message)
    token = accounts.open_session(username.strip())
    accounts.audit(username.strip(), "login", "", request.client.host if request.client else "")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.http.secure_cookies or request.url.scheme == "https",
        max_age=10 * 3600,
    )
    return response


@router.post("/logout")
def logout(request: Request, me: PageUser, db: Db, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(me, csrf)
    Accounts(db).close_session(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{lang}")
def set_lang(lang: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(LANG_COOKIE, lang if lang in i18n.LANGS else "vi", samesite="lax", max_age=365 * 86400)
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


# --- overview and units -----------------------------------------------------------------------


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
            points, title=i18n.text("by_day" if "days" in summary else "by_month", lang), lang=lang
        ),
        score_chart=charts.score_chart(summary["by_score"], i18n.SCORE_LABELS[lang], lang=lang),
        alerts=open_alerts[:10],
        alerts_total=len(open_alerts),
        offline=[k for k in kiosk_rows if k["state"] == "offline"],
        late=reports.late_arrivals(db, registry, unit),
        tz=ctx.settings.tz,
        units=registry.units,
        form_notes=documents.page_form_notes(ctx.settings, db, registry, unit, period, summary, lang),
        **period_vars(request, period),
    )


@router.get("/units/{unit}/table.{kind}")
def unit_table_export(
    unit: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg
) -> Response:
    visible_unit(me, registry, unit)
    table, _ = documents.unit_table(db, registry, unit, period_from(ctx, request), lang_of(request))
    return _export(me, db, table, f"{unit}-{_stamp(period_from(ctx, request))}", kind, f"unit:{unit}")


@router.get("/units/{unit}/three-level.{kind}")
def three_level(unit: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    visible_unit(me, registry, unit)
    table = documents.three_level_form(ctx.settings, db, registry, unit, period_from(ctx, request), ctx.today())
    Accounts(db).audit(me.username, f"export_three_level_{kind}", f"unit:{unit}", table.heading[2])
    name = f"bao-cao-3-muc-{unit}-{_stamp(period_from(ctx, request))}"
    if kind == "xlsx":
        return _download(exports.three_level_xlsx(table), f"{name}.xlsx", "xlsx")
    if kind == "pdf":
        return _download(_pdf(lambda: exports.three_level_pdf(table)), f"{name}.pdf", "pdf")
    raise HTTPException(404, "the three-level form is .xlsx or .pdf")


@router.get("/units/{unit}/report.pdf")
def unit_report(unit: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    visible_unit(me, registry, unit)
    period = period_from(ctx, request)
    Accounts(db).audit(me.username, "export_pdf", f"unit:{unit}", period.label_vi())
    data, _ = _pdf(lambda: documents.unit_report_pdf(db, registry, unit, period, ctx.today(), tz=ctx.settings.tz))
    return _download(data, f"bao-cao-{unit}-{_stamp(period)}.pdf", "pdf")


def _pdf(make: Any) -> Any:
    try:
        return make()
    except exports.ExportError as exc:
        raise HTTPException(503, str(exc)) from None


def _stamp(period: Period) -> str:
    return f"{period.start:%Y%m%d}-{period.end:%Y%m%d}"


# --- counters and officers ----------------------------------------------------------------------


def counter_days_table(summary: dict[str, Any], lang: str) -> exports.Table:
    labels = i18n.SCORE_LABELS[lang]
    key = "days" if "days" in summary else "months"
    columns = [
        exports.Column(i18n.text("day" if key == "days" else "month", lang), "date" if key == "days" else "month"),
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
            date.fromisoformat(p["day"] if key == "days" else p["month"] + "-01"),
            p["total"],
            p["satisfaction_rate"],
            p["index"],
            *(p["by_score"][str(s)] for s in (4, 3, 2, 1)),
            p["flagged"],
            p["unsynced"],
        ]
        for p in summary[key]
    ]
    return exports.Table(summary["name"][:31], columns, body, [summary["name"], summary["unit"]["name"]])


def officers_table(
    ctx: WebContext, db: Store, counters: list[str], period: Period, lang: str
) -> tuple[exports.Table, list[dict[str, Any]]]:
    book = Officers(db, ctx.settings.tz)
    names = {o.id: o.name for o in book.officers()}
    rows = []
    for officer_id, by_score in book.by_officer(counters, period.start, period.end).items():
        rows.append(
            {
                "id": officer_id,
                "name": i18n.text("nobody", lang) if officer_id == NOBODY else names.get(officer_id, officer_id),
                **reports.figures_of(by_score),
            }
        )
    rows.sort(key=lambda r: (r["id"] == NOBODY, r["name"]))
    labels = i18n.SCORE_LABELS[lang]
    columns = [
        exports.Column(i18n.text("officer", lang)),
        exports.Column(i18n.text("total", lang), "int"),
        exports.Column(i18n.text("rate", lang), "rate"),
    ]
    columns += [exports.Column(labels[s], "int") for s in (4, 3, 2, 1)]
    body = [
        [r["name"], r["total"], r["satisfaction_rate"], *(r["by_score"][str(s)] for s in (4, 3, 2, 1))] for r in rows
    ]
    return exports.Table(i18n.text("officers", lang), columns, body), rows


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
    periods = [period, period.previous(), period.year_before()]

    def summary(p: Period) -> dict[str, Any]:
        if unit:
            return reports.summarise_unit(db, registry, unit, p.start, p.end)
        return reports.summarise_counter(db, registry, counter, p.start, p.end)

    columns = [{"label": p.label_vi() if lang == "vi" else p.label_en(), "s": summary(p), "period": p} for p in periods]
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
    page = _page_number(request)
    recent = reports.ratings_between(
        db, [counter], start, end, limit=RECENT_PER_PAGE, offset=(page - 1) * RECENT_PER_PAGE
    )
    _, officer_rows = officers_table(ctx, db, [counter], period, lang)
    kiosks = reports.kiosk_rows(
        db,
        registry,
        units=frozenset([registry.counters[counter].unit]),
        office=_office(ctx),
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
        score_chart=charts.score_chart(summary["by_score"], i18n.SCORE_LABELS[lang], lang=lang),
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
        pager=page_vars(request, page, RECENT_PER_PAGE, summary["total"] + summary["flagged"]),
        tz=ctx.settings.tz,
        **period_vars(request, period),
    )


@router.get("/counters/{counter}/days.{kind}")
def counter_export(
    counter: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg
) -> Response:
    visible_counter(me, registry, counter)
    period = period_from(ctx, request)
    summary = reports.summarise_counter(db, registry, counter, period.start, period.end)
    return _export(
        me, db, counter_days_table(summary, lang_of(request)), f"{counter}-{_stamp(period)}", kind, f"counter:{counter}"
    )


# --- raw ratings, for auditors and BI tools -------------------------------------------------------

RAW_XLSX_MAX_ROWS = 100_000  # a spreadsheet of more is not opened by anyone; the CSV has no limit
RAW_COLUMNS = ["Thời điểm (giờ địa phương)", "Mã lượt", "Quầy", "Cán bộ trực", "Điểm", "Mức", "Gắn cờ", "Đồng hồ"]


def _raw_export(
    me: Principal,
    ctx: WebContext,
    db: Store,
    registry: Registry,
    counters: list[str],
    period: Period,
    name: str,
    kind: str,
    target: str,
) -> Response:
    """Every press at these counters in the period, one row each (flagged ones too): CSV streamed a
    page at a time from the store, XLSX up to RAW_XLSX_MAX_ROWS. Audited like every export."""
    if kind not in ("csv", "xlsx"):
        db.close()
        raise HTTPException(404, "exports are .csv or .xlsx")
    tz = ctx.settings.tz
    start, end = local_bounds(period.start, period.end, tz)
    labels = i18n.SCORE_LABELS["vi"]

    def pages() -> Iterator[list[list[Any]]]:
        after = ("", "")
        while rows := db.raw_ratings(counters, start, end, after=after):
            after = (rows[-1][0], rows[-1][1])
            yield [
                [
                    wire.parse_time(p).astimezone(tz).replace(tzinfo=None, microsecond=0),
                    i,
                    c,
                    o or "",
                    sc,
                    labels[sc],
                    f or "",
                    cl,
                ]
                for p, i, c, o, sc, f, cl in rows
            ]

    filename = f"luot-danh-gia-{name}-{_stamp(period)}.{kind}"
    if kind == "xlsx":
        try:
            Accounts(db).audit(me.username, "export_ratings_xlsx", target, period.label_vi())
            rows: list[list[Any]] = []
            for page in pages():
                rows += page
                if len(rows) > RAW_XLSX_MAX_ROWS:
                    raise HTTPException(
                        413,
                        f"more than {RAW_XLSX_MAX_ROWS} ratings fit no spreadsheet: take the CSV or a shorter period",
                    )
        finally:
            db.close()
        columns = [
            exports.Column(title, "datetime" if n == 0 else "int" if n == 4 else "text")
            for n, title in enumerate(RAW_COLUMNS)
        ]
        table = exports.Table("Lượt đánh giá", columns, rows, heading=[f"Lượt đánh giá — {period.label_vi()}"])
        return _download(exports.to_xlsx(table), filename, "xlsx")

    def csv_bytes() -> Iterator[bytes]:
        try:
            yield exports.csv_header(RAW_COLUMNS)
            for page in pages():
                yield exports.csv_rows([[r[0].strftime("%d/%m/%Y %H:%M:%S"), *r[1:]] for r in page])
        finally:
            db.close()  # the stream outlives the request: it holds its own store, and lets it go here

    try:
        Accounts(db).audit(me.username, "export_ratings_csv", target, period.label_vi())
    except BaseException:
        db.close()
        raise
    return StreamingResponse(
        csv_bytes(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )


@router.get("/counters/{counter}/ratings.{kind}")
def counter_raw_ratings(counter: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, registry: Reg) -> Response:
    visible_counter(me, registry, counter)
    db = ctx.open_store()
    return _raw_export(me, ctx, db, registry, [counter], period_from(ctx, request), counter, kind, f"counter:{counter}")


@router.get("/units/{unit}/ratings.{kind}")
def unit_raw_ratings(unit: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, registry: Reg) -> Response:
    visible_unit(me, registry, unit)
    counters = [c.id for u in registry.subtree(unit) for c in registry.own_counters(u)]
    db = ctx.open_store()
    return _raw_export(me, ctx, db, registry, counters, period_from(ctx, request), unit, kind, f"unit:{unit}")


@router.get("/counters/{counter}/report.pdf")
def counter_report(counter: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    visible_counter(me, registry, counter)
    period = period_from(ctx, request)
    summary = reports.summarise_counter(db, registry, counter, period.start, period.end, tz=ctx.settings.tz)
    previous = reports.summarise_counter(db, registry, counter, period.previous().start, period.previous().end)
    table, _ = officers_table(ctx, db, [counter], period, "vi")
    Accounts(db).audit(me.username, "export_pdf", f"counter:{counter}", period.label_vi())
    data = _pdf(
        lambda: exports.report_pdf(
            heading=documents.report_heading(f"{summary['name']} — {summary['unit']['name']}", period, ctx.today()),
            figures=documents.key_figures(summary, previous, ctx.settings.tz),
            chart_title="Tỷ lệ hài lòng theo ngày",
            chart=documents.chart_points(summary),
            table=table,
            notes=documents.definitions("vi"),
        )
    )
    return _download(data, f"bao-cao-{counter}-{_stamp(period)}.pdf", "pdf")


@router.get("/officers/{officer}", response_class=HTMLResponse)
def officer_page(officer: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    book = Officers(db, ctx.settings.tz)
    person = visible_officer(me, book, officer)
    period = period_from(ctx, request)
    total, per_counter = officer_figures(me, registry, book, officer, period.start, period.end)
    rows = [{"counter": registry.counters[c], **figures} for c, figures in per_counter.items()]
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
        duties=book.duties(officer=officer, limit=50),
        tz=ctx.settings.tz,
        **period_vars(request, period),
    )


# --- flagged presses, snapshots, kiosks, alerts -------------------------------------------------


@router.get("/flagged", response_class=HTMLResponse)
def flagged(
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    reason: str = "",
    unit: str = "",
    counter: str = "",
) -> HTMLResponse:
    """The presses to review, filtered by reason, unit (with everything below it) and counter."""
    need(me, "inspector")
    period = period_from(ctx, request)
    if reason and reason not in REVIEW_REASONS:
        raise HTTPException(422, f"reason must be one of {', '.join(REVIEW_REASONS)}")
    if unit and (unit not in registry.units or not me.sees_unit(unit)):
        raise HTTPException(404, "no such unit")
    if counter and (counter not in registry.counters or not me.sees_counter(registry, counter)):
        raise HTTPException(404, "no such counter")
    within = set(registry.counters_under(unit)) if unit else None
    counters = [
        c
        for c in registry.counters
        if me.sees_counter(registry, c) and (within is None or c in within) and (not counter or c == counter)
    ]
    start, end = local_bounds(period.start, period.end, ctx.settings.tz)
    show_reviewed = request.query_params.get("reviewed") == "1"
    page = _page_number(request)
    rows, total, pending = reports.review_queue(
        db,
        counters,
        start,
        end,
        tz=ctx.settings.tz,
        office=_office(ctx),
        pending_only=not show_reviewed,
        limit=FLAGGED_PER_PAGE,
        offset=(page - 1) * FLAGGED_PER_PAGE,
        reasons=[reason] if reason else None,
    )
    for r in rows:
        r["counter_name"] = registry.counters[r["counter"]].name
    seen_units = [
        registry.units[u] for root in registry.roots() for u in registry.subtree_in_order(root.id) if u in me.units
    ]
    return render(
        ctx,
        request,
        "flagged.html",
        me,
        registry,
        rows=rows,
        total=total,
        pending=pending,
        show_reviewed=show_reviewed,
        pager=page_vars(request, page, FLAGGED_PER_PAGE, total if show_reviewed else pending),
        tz=ctx.settings.tz,
        reasons=list(REVIEW_REASONS),
        chosen_reason=reason,
        unit_choices=seen_units,
        chosen_unit=unit,
        counter_choices=[registry.counters[c] for c in registry.counters if me.sees_counter(registry, c)],
        chosen_counter=counter,
        **period_vars(request, period),
    )


MAX_REVIEW_AT_ONCE = FLAGGED_PER_PAGE


@router.post("/flagged/review")
async def review_many(request: Request, me: PageUser, db: Db, registry: Reg) -> Response:
    """Several presses reviewed at once with one comment (the ticked rows of a page): each is
    checked as one alone would be, and each review is audited."""
    need(me, "inspector")
    form = await request.form()
    check_csrf(me, str(form.get("csrf", "")))
    ids = [str(v) for v in form.getlist("id")]
    comment = str(form.get("comment", "")).strip()
    if not ids:
        raise HTTPException(422, "tick at least one press to review")
    if len(ids) > MAX_REVIEW_AT_ONCE:
        raise HTTPException(422, f"at most {MAX_REVIEW_AT_ONCE} presses at once")
    if len(comment) > 1000:
        raise HTTPException(422, "the comment is longer than 1000 characters")
    found = {i: reports.rating(db, i) if wire.is_rating_id(i) else None for i in dict.fromkeys(ids)}
    if any(f is None or not me.sees_counter(registry, f["counter"]) for f in found.values()):
        raise HTTPException(404, "no such press")  # nothing reviewed: all or none
    with db.transaction():
        for rating_id in found:
            reports.review(db, rating_id, me.username, comment)
            Accounts(db).audit(me.username, "review", f"rating:{rating_id}", comment)
    return RedirectResponse(request.headers.get("referer") or "/flagged", status_code=303)


@router.post("/flagged/{rating_id}/review")
def review(
    rating_id: str,
    request: Request,
    me: PageUser,
    db: Db,
    registry: Reg,
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    need(me, "inspector")
    check_csrf(me, csrf)
    found = reports.rating(db, rating_id)
    if found is None or not me.sees_counter(registry, found["counter"]):
        raise HTTPException(404, "no such press")
    reports.review(db, rating_id, me.username, comment.strip())
    Accounts(db).audit(me.username, "review", f"rating:{rating_id}", comment.strip())
    return RedirectResponse(request.headers.get("referer") or "/flagged", status_code=303)


@router.get("/ratings/{rating_id}", response_class=HTMLResponse)
def rating_page(rating_id: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    """One press with its picture: score, counter, officer on duty, local time, and the pictured
    presses before and after it at the same counter."""
    need(me, "inspector")
    found = reports.rating(db, rating_id) if wire.is_rating_id(rating_id) else None
    if found is None or not me.sees_counter(registry, found["counter"]):
        raise HTTPException(404, "no such press")
    pressed = wire.parse_time(found["pressed_at"])
    on_duty = db.duty_clash(
        found["counter"], found["pressed_at"], wire.format_time(pressed + timedelta(milliseconds=1))
    )
    officer = None
    if on_duty is not None:
        with contextlib.suppress(NotFound):
            officer = Officers(db, ctx.settings.tz).officer(on_duty[0])
    before, after = db.pictured_neighbours(found["counter"], found["pressed_at"], rating_id)
    counter = registry.counters[found["counter"]]
    return render(
        ctx,
        request,
        "rating.html",
        me,
        registry,
        r=found,
        counter=counter,
        unit=registry.units[counter.unit],
        officer=officer,
        before=before,
        after=after,
        day=pressed.astimezone(ctx.settings.tz).date().isoformat(),
        tz=ctx.settings.tz,
    )


@router.get("/snapshots/{rating_id}.jpg")
def snapshot(rating_id: str, me: PageUser, db: Db, registry: Reg) -> Response:
    need(me, "inspector")
    found = reports.rating(db, rating_id)
    if found is None or not me.sees_counter(registry, found["counter"]) or not found["snapshot_path"]:
        raise HTTPException(404, "no snapshot for that rating")
    Accounts(db).audit(
        me.username,
        "view_snapshot",
        f"rating:{rating_id}",
        f"counter {found['counter']}, pressed {found['pressed_at']}",
    )
    data = db.picture(found["snapshot_path"])
    if data is None:
        raise HTTPException(404, "the picture of that press is no longer kept")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


def _office(ctx: WebContext) -> OfficeHours:
    return OfficeHours(ctx.settings.office.weekdays, ctx.settings.office.spans)


def kiosks_table(rows: list[dict[str, Any]], registry: Registry, lang: str) -> exports.Table:
    columns = [
        exports.Column(i18n.text("kiosk", lang)),
        exports.Column(i18n.text("counter", lang)),
        exports.Column(i18n.text("unit", lang)),
        exports.Column("Trạng thái" if lang == "vi" else "State"),
        exports.Column(i18n.text("last_seen", lang)),
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
            k["last_seen"],
            (k["backlog"] or {}).get("ratings"),
            k["camera"],
            k["clock"],
            k["fw"],
            k["uptime_office"],
            "x" if k["silent"] else "",
        ]
        for k in rows
    ]
    return exports.Table(i18n.text("kiosks", lang), columns, body)


def _kiosk_rows(ctx: WebContext, db: Store, registry: Registry, me: Principal, period: Period) -> list[dict[str, Any]]:
    return reports.kiosk_rows(
        db,
        registry,
        units=me.units,
        office=_office(ctx),
        tz=ctx.settings.tz,
        day_from=period.start,
        day_to=period.end,
        now=datetime.now(UTC),
        silent_min=ctx.settings.alerts.silent_min,
    )


@router.get("/kiosks", response_class=HTMLResponse)
def kiosks(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    period = period_from(ctx, request)
    rows = _kiosk_rows(ctx, db, registry, me, period)
    return render(
        ctx,
        request,
        "kiosks.html",
        me,
        registry,
        rows=rows,
        tz=ctx.settings.tz,
        counters=registry.counters,
        units=registry.units,
        **period_vars(request, period),
    )


@router.get("/kiosks.{kind}")
def kiosks_export(kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    period = period_from(ctx, request)
    table = kiosks_table(_kiosk_rows(ctx, db, registry, me, period), registry, lang_of(request))
    return _export(me, db, table, f"thiet-bi-{_stamp(period)}", kind, "kiosks")


ALERT_STATES = ("all", "open", "acked")


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    unit: str = "",
    state: str = "all",
) -> HTMLResponse:
    """Alerts of the units the reader may see, filtered by a unit (and everything below it) and
    by state; each links to its counter (or kiosk) and the day it was opened."""
    if state not in ALERT_STATES:
        raise HTTPException(400, f"state must be one of {', '.join(ALERT_STATES)}")
    units = me.units
    if unit:
        if unit not in registry.units or not me.sees_unit(unit):
            raise HTTPException(404, "no such unit")
        units = frozenset(registry.subtree(unit)) & me.units
    alerts = AlertBook(db, ctx.settings).alerts(units, open_only=state == "open")
    if state == "acked":
        alerts = [a for a in alerts if a.acked_at]
    tz = ctx.settings.tz
    links = {a.id: _alert_link(a.target, a.opened_at, registry, tz) for a in alerts}
    return render(
        ctx,
        request,
        "alerts.html",
        me,
        registry,
        alerts=alerts,
        links=links,
        units=registry.units,
        unit_choices=[
            registry.units[u] for root in registry.roots() for u in registry.subtree_in_order(root.id) if u in me.units
        ],
        chosen_unit=unit,
        state=state,
        states=ALERT_STATES,
        tz=tz,
    )


def _alert_link(target: str, opened_at: str, registry: Registry, tz: ZoneInfo) -> tuple[str, str] | None:
    """(URL, label) of what an alert is about: the counter's page on the day it was opened, or the
    kiosks page for a kiosk."""
    day = wire.parse_time(opened_at).astimezone(tz).date().isoformat()
    if target in registry.counters:
        return f"/counters/{target}?period=day&at={day}", registry.counters[target].name
    if target in registry.kiosks:
        return "/kiosks", target
    return None


@router.post("/alerts/{alert_id}/ack")
def ack_alert(
    alert_id: RowId,
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    need(me, "inspector")
    check_csrf(me, csrf)
    book = AlertBook(db, ctx.settings)
    alert = book.alert(alert_id)
    if alert is None or not me.sees_unit(alert.unit):
        raise HTTPException(404, "no such alert")
    try:
        book.acknowledge(alert_id, me.username, comment)
    except RuleError as exc:
        raise HTTPException(422, str(exc)) from None
    Accounts(db).audit(me.username, "ack_alert", f"alert:{alert_id}", comment.strip())
    return RedirectResponse("/alerts", status_code=303)


@router.get("/alerts/{alert_id}/press")
def alert_press(alert_id: RowId, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    """The press behind a "dissatisfied" alert: the last «Không hài lòng» at its counter within the
    alert's window before it opened (its details and picture, /ratings/{id})."""
    need(me, "inspector")
    alert = AlertBook(db, ctx.settings).alert(alert_id)
    if alert is None or not me.sees_unit(alert.unit):
        raise HTTPException(404, "no such alert")
    if alert.kind != "dissatisfied" or alert.target not in registry.counters:
        raise HTTPException(404, "no such press")
    opened = wire.parse_time(alert.opened_at)
    window_h = float((alert.facts or {}).get("window_h") or 24)
    end = wire.format_time(opened + timedelta(milliseconds=1))
    start = wire.format_time(opened - timedelta(hours=window_h))
    for offset in range(0, 5000, 500):  # newest first, a page at a time; the alert counted at most this many
        rows = db.ratings_page([alert.target], start, end, limit=500, offset=offset)
        found = next((r for r in rows if r["score"] == 1 and not r["flag"]), None)
        if found is not None:
            return RedirectResponse(f"/ratings/{found['id']}", status_code=303)
        if len(rows) < 500:
            break
    raise HTTPException(404, "no such press")


# --- administration ------------------------------------------------------------------------


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, error: str = "", done: str = ""
) -> HTMLResponse:
    need(me, "admin")
    users = [u for u in Accounts(db).users() if me.sees_unit(u.unit)]
    return render(
        ctx,
        request,
        "users.html",
        me,
        registry,
        users=users,
        roles=ROLES,
        units=[registry.units[u] for u in registry.subtree(me.unit)],
        unit_names={u.id: u.name for u in registry.units.values()},
        error=error,
        done=i18n.text(f"done_user_{done}", lang_of(request)) if done in USER_ACTIONS else "",
    )


@router.post("/admin/users")
def add_user(
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[str, Form()],
    unit: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    need(me, "admin")
    check_csrf(me, csrf)
    visible_unit(me, registry, unit)
    try:
        Accounts(db).add_user(username.strip(), password, role=role, unit=unit, registry=registry)
    except (AuthError, NotFound) as exc:
        return users_page(request, me, ctx, db, registry, error=str(exc))
    Accounts(db).audit(me.username, "add_user", f"user:{username.strip()}", f"{role} @ {unit}")
    return RedirectResponse("/admin/users?done=add", status_code=303)


@router.post("/admin/users/{username}/{action}")
def user_action(
    username: str,
    action: str,
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    unit: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Disable (ends their sessions), enable, unlock, set a new password, or change the role and
    unit (``edit``) of a user in scope; the page then says what was done."""
    need(me, "admin")
    check_csrf(me, csrf)
    accounts = Accounts(db)
    try:
        user = accounts.user(username)
    except AuthError:
        raise HTTPException(404, f"no user {username!r}") from None
    if not me.sees_unit(user.unit):
        raise HTTPException(404, f"no user {username!r}")
    if user.username == me.username and action in ("disable", "edit"):
        return users_page(request, me, ctx, db, registry, error=i18n.text(f"no_self_{action}", lang_of(request)))
    detail = ""
    try:
        if action == "disable":
            accounts.disable(username)
        elif action == "enable":
            accounts.enable(username)
        elif action == "unlock":
            accounts.unlock(username)
        elif action == "passwd":
            accounts.set_password(username, password)
        elif action == "edit":
            if unit not in registry.units or not me.sees_unit(unit):
                raise AuthError(f"unit {unit!r}: not one of yours")
            accounts.set_grant(username, role=role, unit=unit, registry=registry)
            detail = f"{user.role} @ {user.unit} → {role} @ {unit}"
        else:
            raise HTTPException(404, f"no action {action!r}")
    except (AuthError, NotFound) as exc:
        return users_page(request, me, ctx, db, registry, error=str(exc))
    accounts.audit(me.username, f"user_{action}", f"user:{username}", detail)
    return RedirectResponse(f"/admin/users?done={action}", status_code=303)


USER_ACTIONS = ("disable", "enable", "unlock", "passwd", "edit", "add")


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    need(me, "admin")
    entries = visible_audit(me, registry, Accounts(db))
    return render(ctx, request, "audit.html", me, registry, entries=entries, tz=ctx.settings.tz)


@router.get("/admin/roster", response_class=HTMLResponse)
def roster_page(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, error: str = "", done: str = ""
) -> HTMLResponse:
    need(me, "admin")
    book = Officers(db, ctx.settings.tz)
    counters = [c for c in registry.counters.values() if c.unit in me.units]
    duties = [d for d in book.duties(limit=200) if d.counter in {c.id for c in counters}]
    officers = book.officers(me.units)
    unit_names = {u.id: u.name for u in registry.units.values()}
    return render(
        ctx,
        request,
        "roster.html",
        me,
        registry,
        officers=officers,
        officer_labels=officer_labels(officers, unit_names),
        unit_names=unit_names,
        counter_names={c.id: c.name for c in counters},
        duties=duties,
        now=now_text(),
        counters=counters,
        units=[registry.units[u] for u in registry.subtree(me.unit)],
        error=error,
        done=done,
        tz=ctx.settings.tz,
    )


def officer_labels(officers: Sequence[Any], unit_names: dict[str, str]) -> dict[str, str]:
    """What a person reads for each officer: the name with the unit, and the id too where two
    officers of one unit share a name (Vietnamese names repeat)."""
    seen: dict[tuple[str, str], int] = {}
    for o in officers:
        seen[(o.name, o.unit)] = seen.get((o.name, o.unit), 0) + 1
    return {
        o.id: f"{o.name} ({unit_names.get(o.unit, o.unit)}" + (f", {o.id})" if seen[(o.name, o.unit)] > 1 else ")")
        for o in officers
    }


@router.post("/admin/officers")
def add_officer(
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    officer_id: Annotated[str, Form()],
    name: Annotated[str, Form()],
    unit: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    need(me, "admin")
    check_csrf(me, csrf)
    visible_unit(me, registry, unit)
    try:
        Officers(db, ctx.settings.tz).add_officer(officer_id.strip(), name, unit, registry, within=me.units)
    except (RosterError, NotFound) as exc:
        return roster_page(request, me, ctx, db, registry, error=str(exc))
    Accounts(db).audit(me.username, "add_officer", f"officer:{officer_id.strip()}", name)
    return RedirectResponse("/admin/roster", status_code=303)


@router.post("/admin/duties")
def add_duty(
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    officer: Annotated[str, Form()],
    counter: Annotated[str, Form()],
    start: Annotated[str, Form()],
    end: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    need(me, "admin")
    check_csrf(me, csrf)
    visible_counter(me, registry, counter)
    book = Officers(db, ctx.settings.tz)
    try:
        if not me.sees_unit(book.officer(officer).unit):
            raise HTTPException(404, f"no officer {officer!r}")
        book.add_duty(
            officer, counter, parse_local(start, ctx.settings.tz), parse_local(end, ctx.settings.tz), registry
        )
    except (RosterError, NotFound) as exc:
        return roster_page(request, me, ctx, db, registry, error=str(exc))
    Accounts(db).audit(me.username, "add_duty", f"counter:{counter}", f"{officer} {start} – {end}")
    return RedirectResponse("/admin/roster", status_code=303)


@router.post("/admin/duties/{duty_id}/end")
def end_duty(
    duty_id: RowId,
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """End a duty now: one not begun is removed, one going on ends now; the page says which."""
    need(me, "admin")
    check_csrf(me, csrf)
    book = Officers(db, ctx.settings.tz)
    try:
        duty = book.duty(duty_id)
    except NotFound:
        raise HTTPException(404, "no such duty") from None
    if not me.sees_counter(registry, duty.counter):
        raise HTTPException(404, "no such duty")
    outcome = book.end_duty(duty_id, now_text())
    Accounts(db).audit(me.username, "end_duty", f"counter:{duty.counter}", f"{duty.officer}: {outcome}")
    lang = lang_of(request)
    return roster_page(request, me, ctx, db, registry, done=i18n.text(f"duty_{outcome}", lang))


@router.post("/admin/roster.csv")
async def import_roster(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, file: UploadFile, csrf: Annotated[str, Form()] = ""
) -> Response:
    need(me, "admin")
    check_csrf(me, csrf)
    text = (await file.read()).decode("utf-8-sig", errors="replace")
    scoped = Registry.build(
        [registry.units[u] for u in me.units], [c for c in registry.counters.values() if c.unit in me.units], []
    )
    try:
        added = Officers(db, ctx.settings.tz).import_csv(text, scoped)
    except RosterError as exc:
        return roster_page(request, me, ctx, db, registry, error=str(exc))
    Accounts(db).audit(me.username, "import_roster", file.filename or "roster.csv", f"{added} duties")
    return roster_page(request, me, ctx, db, registry, done=f"{added}")


@router.get("/admin/rules", response_class=HTMLResponse)
def rules_page(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, error: str = "") -> HTMLResponse:
    need(me, "admin")
    book = AlertBook(db, ctx.settings)
    own = book.own_rules()
    rows = [(registry.units[u], book.rules_for(u, registry, own), u in own) for u in registry.subtree(me.unit)]
    return render(ctx, request, "rules.html", me, registry, rows=rows, keys=RULE_KEYS, error=error)


@router.post("/admin/rules")
async def set_rules(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    need(me, "admin")
    form = await request.form()
    check_csrf(me, str(form.get("csrf", "")))
    unit = str(form.get("unit", ""))
    visible_unit(me, registry, unit)
    values = {k: str(form[k]) for k in RULE_KEYS if form.get(k)}
    try:
        AlertBook(db, ctx.settings).set_rules(unit, values, registry)
    except (RuleError, CollectorError) as exc:
        return rules_page(request, me, ctx, db, registry, error=str(exc))
    Accounts(db).audit(me.username, "set_alert_rules", f"unit:{unit}", str(values))
    return RedirectResponse("/admin/rules", status_code=303)


# --- the registry (admins of a whole tree) ------------------------------------------------------


def _registry_admin(me: Principal, registry: Registry) -> None:
    need(me, "admin")
    if registry.units[me.unit].parent is not None:
        raise HTTPException(403, "the registry is shared by the whole tree: only an admin of its top unit edits it")


@router.get("/admin/registry", response_class=HTMLResponse)
def registry_page(
    request: Request, me: PageUser, ctx: Ctx, registry: Reg, error: str = "", done: str = ""
) -> HTMLResponse:
    _registry_admin(me, registry)
    return render(
        ctx, request, "registry.html", me, registry, reg=registry, error=error, done=done, path=ctx.settings.registry
    )


@router.get("/admin/registry.toml")
def registry_download(me: PageUser, db: Db, registry: Reg) -> Response:
    _registry_admin(me, registry)
    Accounts(db).audit(me.username, "export_registry", "registry", "")
    return _download(registry.to_toml().encode(), "registry.toml", "toml")


@router.post("/admin/registry")
async def registry_upload(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, file: UploadFile, csrf: Annotated[str, Form()] = ""
) -> Response:
    _registry_admin(me, registry)
    check_csrf(me, csrf)
    import tomllib

    from collector.registry import registry_from_dict, save_registry

    try:
        new = registry_from_dict(tomllib.loads((await file.read()).decode("utf-8-sig")), source=file.filename or "")
        if me.unit not in new.units:
            raise RegistryError(f"the new registry must keep your unit {me.unit}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RegistryError) as exc:
        return registry_page(request, me, ctx, registry, error=str(exc))
    if ctx.settings.registry is not None:
        # `collector serve` loads this file when it starts: it must say the same as the store.
        save_registry(new, ctx.settings.registry)
    db.replace_registry(new)
    ctx.forget_registry()
    Accounts(db).audit(
        me.username,
        "replace_registry",
        "registry",
        f"{len(new.units)} units, {len(new.counters)} counters, {len(new.kiosks)} kiosks",
    )
    return registry_page(request, me, ctx, new, done=f"{len(new.units)}/{len(new.counters)}/{len(new.kiosks)}")


# --- remote settings (admins; collector/remotesettings.py) ---------------------------------------


def _settings_scope(me: Principal, registry: Registry, kind: str, ident: str) -> str:
    """The scope's unit for the grant check: a unit itself, or a kiosk's counter's unit."""
    if kind == "unit":
        visible_unit(me, registry, ident)
        return ident
    if kind == "kiosk":
        return registry.counters[_visible_kiosk(me, registry, ident)].unit
    raise HTTPException(404, f"no {kind} {ident!r}")


@router.get("/admin/settings", response_class=HTMLResponse)
def settings_page(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    need(me, "admin")
    book = SettingsBook(db)
    layers = book.layers()
    statuses = db.kiosk_statuses()
    units = [(registry.units[u], layers.get(f"unit:{u}")) for u in registry.subtree_in_order(me.unit)]
    kiosks = []
    for kiosk_id in sorted(registry.kiosks):
        entry = registry.kiosks[kiosk_id]
        if not me.sees_counter(registry, entry.counter):
            continue
        effective = book.effective(kiosk_id, registry, layers)
        kiosks.append(
            {
                "id": kiosk_id,
                "counter": registry.counters[entry.counter].name,
                "own": layers.get(f"kiosk:{kiosk_id}"),
                "effective": effective,
                "reported": (statuses.get(kiosk_id) or {}).get("settings"),
            }
        )
    return render(ctx, request, "settings.html", me, registry, units=units, kiosks=kiosks)


def _settings_form(
    request: Request,
    me: Principal,
    ctx: WebContext,
    db: Store,
    registry: Registry,
    kind: str,
    ident: str,
    *,
    values: dict[str, str] | None = None,
    error: str = "",
) -> HTMLResponse:
    book = SettingsBook(db)
    layers = book.layers()
    own = layers.get(scope_key(kind, ident))
    if values is None:
        values = {
            f"{section}.{key}": _form_text(value)
            for section, keys in (own.settings if own else {}).items()
            for key, value in keys.items()
        }
    if kind == "kiosk":
        effective = book.effective(ident, registry, layers)
        inherited_layers = [layer for layer in (effective.layers if effective else ()) if layer is not own]
    else:
        inherited_layers = [layers[f"unit:{u.id}"] for u in registry.path(ident)[:-1] if f"unit:{u.id}" in layers]
    inherited = merge_layers(*(layer.settings for layer in inherited_layers))
    title = registry.units[ident].name if kind == "unit" else ident
    return render(
        ctx,
        request,
        "settings_form.html",
        me,
        registry,
        status=422 if error else 200,
        kind=kind,
        ident=ident,
        title=title,
        keys=FORM_KEYS,
        values=values,
        inherited={f"{s}.{k}": _form_text(v) for s, keys in inherited.items() for k, v in keys.items()},
        own=own,
        error=error,
    )


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@router.get("/admin/settings/unit/{unit}", response_class=HTMLResponse)
def unit_settings_form(unit: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    need(me, "admin")
    _settings_scope(me, registry, "unit", unit)
    return _settings_form(request, me, ctx, db, registry, "unit", unit)


@router.get("/admin/settings/kiosk/{kiosk}", response_class=HTMLResponse)
def kiosk_settings_form(kiosk: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    need(me, "admin")
    _settings_scope(me, registry, "kiosk", kiosk)
    return _settings_form(request, me, ctx, db, registry, "kiosk", kiosk)


@router.post("/admin/settings/unit/{unit}")
async def set_unit_settings(unit: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    return await _set_settings(request, me, ctx, db, registry, "unit", unit)


@router.post("/admin/settings/kiosk/{kiosk}")
async def set_kiosk_settings(kiosk: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    return await _set_settings(request, me, ctx, db, registry, "kiosk", kiosk)


async def _set_settings(
    request: Request, me: Principal, ctx: WebContext, db: Store, registry: Registry, kind: str, ident: str
) -> Response:
    need(me, "admin")
    form = await request.form()
    check_csrf(me, str(form.get("csrf", "")))
    _settings_scope(me, registry, kind, ident)
    texts = {f"{s}.{k}": str(form.get(f"{s}.{k}", "")) for s, k in FORM_KEYS}
    clear = form.get("clear") is not None
    try:
        values = {} if clear else from_form(texts)
        layer = SettingsBook(db).put(kind, ident, values, registry, by=me.username, at=now_text())
    except SettingsFormError as exc:
        return _settings_form(request, me, ctx, db, registry, kind, ident, values=texts, error=str(exc))
    Accounts(db).audit(
        me.username,
        "set_remote_settings",
        f"{kind}:{ident}",
        f"revision {layer.revision}: {json.dumps(layer.settings)}",
    )
    return RedirectResponse("/admin/settings", status_code=303)


# --- one kiosk's page -------------------------------------------------------------------------------


def _visible_kiosk(me: Principal, registry: Registry, kiosk: str) -> str:
    """The kiosk's counter; 404 for a kiosk that does not exist or is outside the reader's grant."""
    entry = registry.kiosks.get(kiosk)
    if entry is None or not me.sees_counter(registry, entry.counter):
        raise HTTPException(404, f"no kiosk {kiosk!r}")
    return entry.counter


def _normalised(values: list[float | None]) -> list[float | None]:
    top = max((v for v in values if v is not None), default=0.0)
    return [None if v is None else (v / top if top else 0.0) for v in values]


# What a kiosk's page lists as its history: each step of its updates (as it reported them), its
# certificate renewals, and what admins asked of it. Settings set for its unit are on /admin/settings.
KIOSK_HISTORY = ("kiosk_update", "renew_certificate", "request_selftest", "update_action", "set_remote_settings")


@router.get("/kiosks/{kiosk}", response_class=HTMLResponse)
def kiosk_page(kiosk: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    """A kiosk's health over time, its version, settings and certificate, its last self-test and
    newest presses; an admin can ask for a self-test or change its settings from here."""
    counter = _visible_kiosk(me, registry, kiosk)
    now = datetime.now(UTC)
    status = db.kiosk_statuses().get(kiosk) or {}
    week_ago = wire.format_time(now - timedelta(days=7))
    samples = [(at, json.loads(doc)) for at, doc in db.kiosk_samples(kiosk, week_ago)]
    transitions = db.kiosk_transitions(kiosk, wire.format_time(now - timedelta(days=30)))
    book = SettingsBook(db)
    effective = book.effective(kiosk, registry)
    ca = FleetCA(ctx.settings.data_dir / "fleet")
    expires = ca.expiry(kiosk) if ca.exists() else None
    backlog = _normalised([s.get("backlog") for _, s in samples])
    disk = _normalised([s.get("disk_free_mb") for _, s in samples])
    recent = db.kiosk_recent_ratings(kiosk, [counter], limit=20)
    history = db.audit_for(f"kiosk:{kiosk}", KIOSK_HISTORY, limit=40)
    return render(
        ctx,
        request,
        "kiosk.html",
        me,
        registry,
        kiosk=kiosk,
        counter=registry.counters[counter],
        unit=registry.units[registry.counters[counter].unit],
        kiosk_status=status,
        samples=samples[-48:][::-1],
        sample_count=len(samples),
        backlog_chart=charts.sparkline(backlog, width=360, height=40),
        disk_chart=charts.sparkline(disk, width=360, height=40),
        transitions=transitions[::-1],
        effective=effective,
        cert_expires=expires,
        cert_days=None if expires is None else (expires - now).days,
        recent=recent,
        history=history,
        tz=ctx.settings.tz,
        done=request.query_params.get("done", ""),
    )


@router.post("/kiosks/{kiosk}/selftest")
def request_selftest(
    kiosk: str, request: Request, me: PageUser, db: Db, registry: Reg, csrf: Annotated[str, Form()] = ""
) -> Response:
    need(me, "admin")
    check_csrf(me, csrf)
    _visible_kiosk(me, registry, kiosk)
    layer = SettingsBook(db).request_selftest(kiosk, registry, by=me.username, at=now_text())
    Accounts(db).audit(me.username, "request_selftest", f"kiosk:{kiosk}", f"request {layer.settings['selftest']}")
    return RedirectResponse(f"/kiosks/{quote(kiosk)}?done=selftest", status_code=303)


@router.post("/kiosks/{kiosk}/update")
def request_update_action(
    kiosk: str,
    request: Request,
    me: PageUser,
    db: Db,
    registry: Reg,
    action: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Retry a release the kiosk switched back from, or roll it back to the version before."""
    need(me, "admin")
    check_csrf(me, csrf)
    _visible_kiosk(me, registry, kiosk)
    try:
        layer = SettingsBook(db).request_update_action(kiosk, action, registry, by=me.username, at=now_text())
    except SettingsFormError as exc:
        raise HTTPException(400, str(exc)) from None
    Accounts(db).audit(me.username, "update_action", f"kiosk:{kiosk}", json.dumps(layer.settings["update_action"]))
    return RedirectResponse(f"/kiosks/{quote(kiosk)}?done={quote(action)}", status_code=303)
