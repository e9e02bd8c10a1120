"""What every page module shares: rendering, periods and paging, exports, path ids."""

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import HTTPException, Path, Request, Response
from fastapi.responses import HTMLResponse

from collector import exports, i18n
from collector.accounts import Accounts, Principal
from collector.anystore import Store
from collector.office import OfficeHours
from collector.periods import KINDS, Period
from collector.registry import Registry
from collector.web.context import (
    WebContext,
    base_vars,
    lang_of,
)
from kiosk import wire

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
        # a period still running: its figures are up to today (compared with whole periods before)
        "ongoing": period.start <= request.app.state.web.today() <= period.end,
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


def page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    if not re.fullmatch(r"[0-9]{1,7}", text) or not 1 <= int(text) <= 1_000_000:
        raise HTTPException(422, f"page {text!r}: a whole number from 1")
    return int(text)


MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
    "toml": "application/toml; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jpg": "image/jpeg",
}


def files(*kinds: str, what: str) -> dict[str, Any]:
    """A route that answers with a file (not JSON), as OpenAPI says it: its media types, for
    generated clients and BI tools (``@router.get(path, **files("csv", what=…))``)."""
    content: dict[str, Any] = {MEDIA[k].split(";")[0]: {} for k in kinds}
    return {"response_class": Response, "responses": {200: {"description": what, "content": content}}}


def download(data: bytes, name: str, kind: str) -> Response:
    return Response(
        data, media_type=MEDIA[kind], headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    )


def csv_dialect(request: Request) -> exports.CsvDialect:
    """``?csv=excel`` (the default: «;», decimal comma, for Excel on a Vietnamese Windows) or
    ``?csv=data`` (commas, decimal points, ISO 8601 times, for scripts and BI tools)."""
    name = request.query_params.get("csv", "excel")
    if name not in exports.CSV_DIALECTS:
        raise HTTPException(422, f"csv must be one of {', '.join(exports.CSV_DIALECTS)}")
    return exports.CSV_DIALECTS[name]


def export(
    request: Request,
    me: Principal,
    db: Store,
    table: exports.Table,
    name: str,
    kind: str,
    target: str,
    period: Period,
) -> Response:
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404, "exports are .csv or .xlsx")
    dialect = csv_dialect(request) if kind == "csv" else None
    Accounts(db).audit(me.username, f"export_{kind}", target, f"{table.title} — {period.label_vi()}")
    if dialect is not None:
        return download(exports.to_csv(table, dialect), f"{name}.csv", "csv")
    if kind == "xlsx":
        return download(exports.to_xlsx(table), f"{name}.xlsx", "xlsx")
    raise HTTPException(404, "exports are .csv or .xlsx")


def visible_kiosk(me: Principal, registry: Registry, kiosk: str) -> str:
    """The kiosk's counter; 404 for a kiosk that does not exist or is outside the reader's grant."""
    entry = registry.kiosks.get(kiosk)
    if entry is None or not me.sees_counter(registry, entry.counter):
        raise HTTPException(404, f"no kiosk {kiosk!r}")
    return entry.counter


def office_hours(ctx: WebContext) -> OfficeHours:
    return OfficeHours(ctx.settings.office.weekdays, ctx.settings.office.spans)


def pdf_or_503(make: Any) -> Any:
    try:
        return make()
    except exports.ExportError as exc:
        raise HTTPException(503, str(exc)) from None


def stamp(period: Period) -> str:
    return f"{period.start:%Y%m%d}-{period.end:%Y%m%d}"
