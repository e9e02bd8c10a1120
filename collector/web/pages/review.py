"""Pages: flagged presses, snapshots, kiosks, alerts."""

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from collector import documents, reports
from collector.accounts import Accounts, Principal
from collector.alerts import Alert, AlertBook, RuleError
from collector.anystore import Store
from collector.errors import NotFound
from collector.officers import Officers, local_bounds
from collector.periods import Period
from collector.registry import Registry
from collector.sqlshared import REVIEW_REASONS
from collector.web.context import (
    Ctx,
    Db,
    ExportUser,
    PageUser,
    Reg,
    WebContext,
    check_csrf,
    lang_of,
    need,
    period_from,
)
from collector.web.pages.common import (
    FLAGGED_PER_PAGE,
    RowId,
    export,
    files,
    office_hours,
    page_number,
    page_vars,
    period_vars,
    render,
    stamp,
)
from collector.web.pages.forms import done_words
from kiosk import wire

router = APIRouter()


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
    return _flagged_page(request, me, ctx, db, registry, reason, unit, counter)


def _flagged_page(
    request: Request,
    me: Principal,
    ctx: WebContext,
    db: Store,
    registry: Registry,
    reason: str,
    unit: str,
    counter: str,
    error: str | None = None,
    comment: str = "",
    ticked: frozenset[str] = frozenset(),
) -> HTMLResponse:
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
    page = page_number(request)
    rows, total, pending = reports.review_queue(
        db,
        counters,
        start,
        end,
        tz=ctx.settings.tz,
        office=office_hours(ctx),
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
        status=200 if error is None else 422,
        error=error,
        done=done_words(request, request.query_params.get("done", ""), ("reviewed",)),
        bulk_comment=comment,
        ticked=ticked,
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
async def review_many(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    """Several presses reviewed at once with one comment (the ticked rows of a page): each is
    checked as one alone would be, and each review is audited. The form is sent with the page's
    filters in its address, so a refusal shows the same page again with the comment kept."""
    need(me, "inspector")
    form = await request.form()
    check_csrf(me, str(form.get("csrf", "")))
    ids = [str(v) for v in form.getlist("id")]
    comment = str(form.get("comment", "")).strip()
    refusal = (
        "tick at least one press to review"
        if not ids
        else f"at most {MAX_REVIEW_AT_ONCE} presses at once"
        if len(ids) > MAX_REVIEW_AT_ONCE
        else "the comment is longer than 1000 characters"
        if len(comment) > 1000
        else None
    )

    def refuse(message: str, ticked: Iterable[str]) -> HTMLResponse:
        """The same page again (its filters are in this form's address), the comment and ticks kept."""
        query = request.query_params
        reason, unit, counter = (query.get(k, "") for k in ("reason", "unit", "counter"))
        return _flagged_page(
            request, me, ctx, db, registry, reason, unit, counter, message, comment[:1000], frozenset(ticked)
        )

    if refusal is not None:
        return refuse(refusal, ids[:MAX_REVIEW_AT_ONCE])
    found = {i: reports.rating(db, i) if wire.is_rating_id(i) else None for i in dict.fromkeys(ids)}
    if any(f is None or not me.sees_counter(registry, f["counter"]) for f in found.values()):
        raise HTTPException(404, "no such press")  # nothing reviewed: all or none
    before = db.reviewed_by(list(found))
    if before:  # a review is not written over (the queue showed them open when the page was made)
        first = next(iter(before))
        message = f"press {first} was reviewed already by {before[first]}; nothing was reviewed"
        return refuse(message, (i for i in found if i not in before))
    with db.transaction():
        for rating_id in found:
            reports.review(db, rating_id, me.username, comment)
            Accounts(db).audit(me.username, "review", f"rating:{rating_id}", comment)
    return RedirectResponse(f"/flagged?{_with_done(request, 'reviewed', len(found))}", status_code=303)


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
    if len(comment.strip()) > 1000:
        raise HTTPException(422, "the comment is longer than 1000 characters")
    found = reports.rating(db, rating_id)
    if found is None or not me.sees_counter(registry, found["counter"]):
        raise HTTPException(404, "no such press")
    before = db.reviewed_by([rating_id])
    if before:
        raise HTTPException(409, f"press {rating_id} was reviewed already by {before[rating_id]}; nothing was reviewed")
    reports.review(db, rating_id, me.username, comment.strip())
    Accounts(db).audit(me.username, "review", f"rating:{rating_id}", comment.strip())
    return RedirectResponse(f"/flagged?{_with_done(request, 'reviewed', 1)}", status_code=303)


def _with_done(request: Request, done: str, n: int) -> str:
    """The queue's filters as the page that sent the form had them (its address), and what was done."""
    referer = urlsplit(request.headers.get("referer") or "")
    kept = [(k, v) for k, v in parse_qsl(referer.query or request.url.query) if k not in ("done", "n")]
    return urlencode([*kept, ("done", done), ("n", str(n))])


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


@router.get("/snapshots/{rating_id}.jpg", **files("jpg", what="The picture of a press"))
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


def _kiosk_rows(ctx: WebContext, db: Store, registry: Registry, me: Principal, period: Period) -> list[dict[str, Any]]:
    return reports.kiosk_rows(
        db,
        registry,
        units=me.units,
        office=office_hours(ctx),
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


@router.get("/kiosks.{kind}", **files("csv", "xlsx", what="The kiosks"))
def kiosks_export(kind: str, request: Request, me: ExportUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    period = period_from(ctx, request)
    table = documents.kiosks_table(
        _kiosk_rows(ctx, db, registry, me, period), registry, lang_of(request), ctx.settings.tz
    )
    return export(request, me, db, table, f"thiet-bi-{stamp(period)}", kind, "kiosks", period)


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
    links = {a.id: _alert_link(a, registry, tz) for a in alerts}
    return render(
        ctx,
        request,
        "alerts.html",
        me,
        registry,
        done=done_words(request, request.query_params.get("done", ""), ("alert_acked", "alert_acked_before")),
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


def _alert_link(alert: Alert, registry: Registry, tz: ZoneInfo) -> tuple[str, str] | None:
    """(URL, label) of what an alert is about: the counter's page over the days of the alert's
    window (the day it was opened when it has none), or the kiosks page for a kiosk."""
    target = alert.target
    opened = wire.parse_time(alert.opened_at)
    day = opened.astimezone(tz).date()
    first = (opened - alert.window).astimezone(tz).date() if alert.window else day
    if target in registry.counters:
        name = registry.counters[target].name
        if first < day:
            return f"/counters/{target}?from={first.isoformat()}&to={day.isoformat()}", name
        return f"/counters/{target}?period=day&at={day.isoformat()}", name
    if target in registry.kiosks:
        return "/kiosks", target
    return None


def visible_alert(me: Principal, book: AlertBook, alert_id: int) -> Alert:
    """The alert, when the reader sees its unit; 404 otherwise (another unit's is no such alert)."""
    alert = book.alert(alert_id)
    if alert is None or not me.sees_unit(alert.unit):
        raise HTTPException(404, "no such alert")
    return alert


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
    visible_alert(me, book, alert_id)
    try:
        acked = book.acknowledge(alert_id, me.username, comment)
    except RuleError as exc:
        raise HTTPException(422, str(exc)) from None
    if not acked:  # twice (two inspectors, a form sent again): nothing changed, nothing to audit
        return RedirectResponse(f"/alerts?{_with_done(request, 'alert_acked_before', 1)}", status_code=303)
    Accounts(db).audit(me.username, "ack_alert", f"alert:{alert_id}", comment.strip())
    return RedirectResponse(f"/alerts?{_with_done(request, 'alert_acked', 1)}", status_code=303)


@router.get("/alerts/{alert_id}/press")
def alert_press(alert_id: RowId, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    """The press behind a "dissatisfied" alert: the last «Không hài lòng» at its counter within the
    alert's window before it opened (its details and picture, /ratings/{id})."""
    need(me, "inspector")
    alert = visible_alert(me, AlertBook(db, ctx.settings), alert_id)
    if alert.kind != "dissatisfied" or alert.target not in registry.counters:
        raise HTTPException(404, "no such press")
    opened = wire.parse_time(alert.opened_at)
    end = wire.format_time(opened + timedelta(milliseconds=1))
    start = wire.format_time(opened - (alert.window or timedelta(hours=24)))
    for offset in range(0, 5000, 500):  # newest first, a page at a time, the newest 5,000 at most
        rows = db.ratings_page([alert.target], start, end, limit=500, offset=offset)
        found = next((r for r in rows if r["score"] == 1 and not r["flag"]), None)
        if found is not None:
            return RedirectResponse(f"/ratings/{found['id']}", status_code=303)
        if len(rows) < 500:
            break
    raise HTTPException(404, "no such press")
