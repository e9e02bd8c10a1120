"""Pages: remote settings (admins; collector/remotesettings.py)."""

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from collector.accounts import Accounts, Principal
from collector.anystore import Store
from collector.registry import Registry
from collector.remotesettings import FORM_KEYS, SettingsBook, SettingsFormError, from_form, scope_key
from collector.store import now_text
from collector.web.context import (
    Ctx,
    Db,
    PageUser,
    Reg,
    WebContext,
    check_csrf,
    need,
    visible_unit,
)
from collector.web.pages.common import render, visible_kiosk
from kiosk.remote import merge as merge_layers

router = APIRouter()


def _settings_scope(me: Principal, registry: Registry, kind: str, ident: str) -> str:
    """The scope's unit for the grant check: a unit itself, or a kiosk's counter's unit."""
    if kind == "unit":
        visible_unit(me, registry, ident)
        return ident
    if kind == "kiosk":
        return registry.counters[visible_kiosk(me, registry, ident)].unit
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
