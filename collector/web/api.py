"""The JSON API (CONTRACT.md): summaries, the unit tree, kiosk health — each limited to the
units the caller was granted. Session cookie or HTTP Basic."""

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from collector import reports
from collector.alerts import AlertBook
from collector.officers import NOBODY, Officers
from collector.periods import check_years
from collector.store import QuarantineEntry
from collector.web import models
from collector.web.context import (
    ApiUser,
    Ctx,
    Db,
    Reg,
    need,
    officer_figures,
    sees_quarantine_entry,
    visible_counter,
    visible_officer,
    visible_unit,
)

MAX_RANGE_DAYS = 3660

router = APIRouter(prefix="/api/v1")
# Answers are described by collector/web/models.py and sent as built: only what was set, by alias
# ("from"), so a day series does not gain an empty month series.
TYPED: dict[str, Any] = {"response_model_exclude_unset": True, "response_model_by_alias": True}


def _days(ctx: Ctx, from_: date | None, to: date | None) -> tuple[date, date]:
    day_to = to or ctx.today()
    try:
        check_years(day_to, *([from_] if from_ else []))
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    day_from = from_ or (day_to - timedelta(days=29))
    if day_from > day_to:
        raise HTTPException(status_code=422, detail=f"from ({day_from}) is after to ({day_to})")
    if (day_to - day_from).days > MAX_RANGE_DAYS:
        raise HTTPException(status_code=422, detail=f"a period is at most {MAX_RANGE_DAYS} days")
    return day_from, day_to


From = Annotated[date | None, Query(alias="from", description="first local day, YYYY-MM-DD")]
To = Annotated[date | None, Query(description="last local day (inclusive), YYYY-MM-DD")]


@router.get("/counters/{counter}/summary", response_model=models.CounterSummary, **TYPED)
def counter_summary(
    counter: str, me: ApiUser, ctx: Ctx, db: Db, registry: Reg, from_: From = None, to: To = None
) -> dict[str, Any]:
    visible_counter(me, registry, counter)
    return reports.summarise_counter(db, registry, counter, *_days(ctx, from_, to), tz=ctx.settings.tz).to_dict()


@router.get("/units/{unit}/summary", response_model=models.UnitSummary, **TYPED)
def unit_summary(
    unit: str, me: ApiUser, ctx: Ctx, db: Db, registry: Reg, from_: From = None, to: To = None
) -> dict[str, Any]:
    visible_unit(me, registry, unit)
    return reports.summarise_unit(db, registry, unit, *_days(ctx, from_, to), tz=ctx.settings.tz).to_dict()


@router.get("/units", response_model=models.UnitTree, **TYPED)
def units(me: ApiUser, registry: Reg) -> dict[str, Any]:
    """The unit tree from the caller's granted unit down."""

    def node(unit_id: str) -> dict[str, Any]:
        u = registry.unit(unit_id)
        return {
            "id": u.id,
            "name": u.name,
            "level": u.level,
            "counters": [{"id": c.id, "name": c.name} for c in registry.own_counters(u.id)],
            "children": [node(c.id) for c in registry.child_units(u.id)],
        }

    return {"units": [node(me.unit)]}


@router.get("/kiosks", response_model=models.Kiosks, **TYPED)
def kiosks(me: ApiUser, db: Db, registry: Reg) -> dict[str, Any]:
    rows = reports.kiosk_health(db, registry)
    return {"kiosks": [k for k in rows if me.sees_counter(registry, k["counter"])]}


@router.get("/officers/{officer}/summary", response_model=models.OfficerSummary, **TYPED)
def officer_summary(
    officer: str, me: ApiUser, ctx: Ctx, db: Db, registry: Reg, from_: From = None, to: To = None
) -> dict[str, Any]:
    book = Officers(db, ctx.settings.tz)
    person = visible_officer(me, book, officer)
    day_from, day_to = _days(ctx, from_, to)
    total, per_counter = officer_figures(me, registry, book, officer, day_from, day_to)
    return {
        "officer": person.id,
        "name": person.name,
        "unit": person.unit,
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        **total.to_dict(),
        "counters": [{"counter": c, **figures.to_dict()} for c, figures in per_counter.items()],
    }


@router.get("/units/{unit}/officers", response_model=models.UnitOfficers, **TYPED)
def unit_officers(
    unit: str, me: ApiUser, ctx: Ctx, db: Db, registry: Reg, from_: From = None, to: To = None
) -> dict[str, Any]:
    """Ratings per officer on duty at the counters of the unit and below (null officer: nobody)."""
    visible_unit(me, registry, unit)
    day_from, day_to = _days(ctx, from_, to)
    book = Officers(db, ctx.settings.tz)
    names = {o.id: o.name for o in book.officers()}
    rows = book.by_officer(registry.counters_under(unit), day_from, day_to)
    return {
        "unit": unit,
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        "officers": [
            {"officer": None if o == NOBODY else o, "name": names.get(o), **reports.figures_of(s).to_dict()}
            for o, s in sorted(rows.items())
        ],
    }


@router.get("/alerts", response_model=models.Alerts, **TYPED)
def alerts(
    me: ApiUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    open_only: bool = False,
    unit: Annotated[str, Query(description="only this unit and everything below it")] = "",
    state: Annotated[Literal["all", "open", "acked"], Query()] = "all",
) -> dict[str, Any]:
    units = me.units
    if unit:
        visible_unit(me, registry, unit)
        units = frozenset(registry.subtree(unit)) & me.units
    book = AlertBook(db, ctx.settings)
    found = book.alerts(units, open_only=open_only or state == "open")
    if state == "acked":
        found = [a for a in found if a.acked_at]
    return {"alerts": [a.to_dict() for a in found]}


@router.get("/quarantine", response_model=models.Quarantine, **TYPED)
def quarantine(
    me: ApiUser,
    db: Db,
    registry: Reg,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after_id: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Quarantined messages of the admin's units (by the kiosk in the topic), a page at a time:
    pass the last id seen as ``after_id`` for the next page."""
    need(me, "admin")
    entries: list[QuarantineEntry] = []
    while len(entries) < limit:
        page = db.quarantined(after_id=after_id, limit=1000)
        if not page:
            break
        after_id = page[-1].id
        entries += [e for e in page if sees_quarantine_entry(me, registry, e.topic)]
    entries = entries[:limit]
    return {
        "next_after_id": entries[-1].id if len(entries) == limit else None,
        "entries": [
            {
                "id": e.id,
                "topic": e.topic,
                "received_at": e.received_at,
                "reason": e.reason,
                "detail": e.detail,
                "bytes": len(e.payload),
                "preview": e.payload[:200].decode("utf-8", "replace"),
            }
            for e in entries
        ],
    }
