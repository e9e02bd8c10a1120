"""Pages: one kiosk's page."""

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from collector import charts
from collector.accounts import Accounts
from collector.fleet import FleetCA
from collector.remotesettings import SettingsBook, SettingsFormError
from collector.store import now_text
from collector.web.context import (
    Ctx,
    Db,
    PageUser,
    Reg,
    check_csrf,
    need,
)
from collector.web.pages.common import render, visible_kiosk
from kiosk import wire

router = APIRouter()


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
    counter = visible_kiosk(me, registry, kiosk)
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
    visible_kiosk(me, registry, kiosk)
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
    visible_kiosk(me, registry, kiosk)
    try:
        layer = SettingsBook(db).request_update_action(kiosk, action, registry, by=me.username, at=now_text())
    except SettingsFormError as exc:
        raise HTTPException(400, str(exc)) from None
    Accounts(db).audit(me.username, "update_action", f"kiosk:{kiosk}", json.dumps(layer.settings["update_action"]))
    return RedirectResponse(f"/kiosks/{quote(kiosk)}?done={quote(action)}", status_code=303)
