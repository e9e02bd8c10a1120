"""Pages: administration."""

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse

from collector import i18n
from collector.accounts import ROLES, Accounts, AuthError
from collector.alerts import RULE_KEYS, AlertBook, RuleError
from collector.errors import CollectorError, NotFound
from collector.officers import Officers, RosterError, parse_local
from collector.registry import Registry
from collector.store import now_text
from collector.web.context import (
    Ctx,
    Db,
    PageUser,
    Reg,
    check_csrf,
    lang_of,
    need,
    visible_audit,
    visible_counter,
    visible_unit,
)
from collector.web.pages.common import RowId, render

router = APIRouter()


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
