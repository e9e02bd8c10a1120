"""Pages: raw ratings, for auditors and BI tools."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from collector import exports, i18n
from collector.accounts import Accounts, Principal
from collector.anystore import Store
from collector.officers import Officers, local_bounds
from collector.periods import Period
from collector.registry import Registry
from collector.web.context import (
    Ctx,
    ExportUser,
    Reg,
    WebContext,
    period_from,
    visible_counter,
    visible_unit,
)
from collector.web.pages.common import csv_dialect, download, files, stamp
from kiosk import wire

router = APIRouter()


RAW_XLSX_MAX_ROWS = 100_000  # a spreadsheet of more is not opened by anyone; the CSV has no limit
RAW_COLUMNS = [
    "Thời điểm (giờ địa phương)",
    "Mã lượt",
    "Mã quầy",
    "Quầy",
    "Mã cán bộ",
    "Cán bộ trực",
    "Điểm",
    "Mức",
    "Gắn cờ",
    "Đồng hồ",
]
RAW_TABLE_COLUMNS = [
    exports.Column(title, "datetime" if n == 0 else "int" if n == 6 else "text") for n, title in enumerate(RAW_COLUMNS)
]


def _raw_export(
    request: Request,
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
    try:
        if kind not in ("csv", "xlsx"):
            raise HTTPException(404, "exports are .csv or .xlsx")
        dialect = csv_dialect(request)
        officer_names = {o.id: o.name for o in Officers(db, ctx.settings.tz).officers()}
    except BaseException:
        db.close()  # this request's own store: let go on every way out
        raise
    tz = ctx.settings.tz
    start, end = local_bounds(period.start, period.end, tz)
    labels = i18n.SCORE_LABELS["vi"]
    counter_names = {c.id: c.name for c in registry.counters.values()}
    # Both kinds of reader: ids and names side by side; the flag and the clock in words for a
    # person (Excel, XLSX), as codes for a tool (?csv=data).
    coded = kind == "csv" and dialect.name == "data"

    def flag_of(flag: str | None) -> str:
        return (flag or "") if coded or not flag else i18n.text(f"flag_{flag}", "vi")

    def clock_of(clock: str) -> str:
        return clock if coded else i18n.word("clock", clock, "vi")

    def pages() -> Iterator[list[list[Any]]]:
        after = ("", "")
        while rows := db.raw_ratings(counters, start, end, after=after):
            after = (rows[-1][0], rows[-1][1])
            yield [
                [
                    wire.parse_time(p).astimezone(tz).replace(microsecond=0),
                    i,
                    c,
                    counter_names.get(c, c),
                    o or "",
                    officer_names.get(o, o) if o else i18n.text("nobody", "vi"),
                    sc,
                    labels[sc],
                    flag_of(f),
                    clock_of(cl),
                ]
                for p, i, c, o, sc, f, cl in rows
            ]

    data_csv = kind == "csv" and dialect.name == "data"
    filename = f"luot-danh-gia-{name}-{stamp(period)}{'-du-lieu' if data_csv else ''}.{kind}"
    if kind == "xlsx":
        try:
            rows: list[list[Any]] = []
            for page in pages():
                for row in page:
                    row[0] = row[0].replace(tzinfo=None)  # a spreadsheet's times have no zone: local, as titled
                rows += page
                if len(rows) > RAW_XLSX_MAX_ROWS:
                    raise HTTPException(
                        413,
                        f"more than {RAW_XLSX_MAX_ROWS} ratings fit no spreadsheet: take the CSV or a shorter period",
                    )
            Accounts(db).audit(me.username, "export_ratings_xlsx", target, period.label_vi())
        finally:
            db.close()
        heading = [f"Lượt đánh giá — {period.label_vi()}"]
        table = exports.Table("Lượt đánh giá", RAW_TABLE_COLUMNS, rows, heading=heading)
        return download(exports.to_xlsx(table), filename, "xlsx")

    def csv_bytes() -> Iterator[bytes]:
        try:
            yield exports.csv_header(RAW_COLUMNS, dialect)
            for page in pages():
                yield exports.csv_rows(page, RAW_TABLE_COLUMNS, dialect)
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


@router.get(
    "/counters/{counter}/ratings.{kind}",
    **files("csv", "xlsx", what="Every press, one a row"),
)
def counter_raw_ratings(counter: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, registry: Reg) -> Response:
    visible_counter(me, registry, counter)
    db = ctx.open_store()
    period = period_from(ctx, request)
    return _raw_export(request, me, ctx, db, registry, [counter], period, counter, kind, f"counter:{counter}")


@router.get(
    "/units/{unit}/ratings.{kind}",
    **files("csv", "xlsx", what="Every press, one a row"),
)
def unit_raw_ratings(unit: str, kind: str, request: Request, me: ExportUser, ctx: Ctx, registry: Reg) -> Response:
    visible_unit(me, registry, unit)
    counters = [c.id for u in registry.subtree(unit) for c in registry.own_counters(u)]
    db = ctx.open_store()
    return _raw_export(request, me, ctx, db, registry, counters, period_from(ctx, request), unit, kind, f"unit:{unit}")
