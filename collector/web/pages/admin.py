"""Pages: administration."""

import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from collector import formats, i18n
from collector.accounts import ROLES, Accounts, AuthError, Principal
from collector.alerts import RULE_KEYS, AlertBook, RuleError
from collector.anystore import Store
from collector.errors import ConfigError, NotFound
from collector.officers import Duty, Officers, RosterError, local_bounds, local_text, name_key, parse_local
from collector.registry import HIDDEN, Registry
from collector.store import now_text
from collector.web.context import (
    Ctx,
    Db,
    PageUser,
    Reg,
    WebContext,
    lang_of,
    need,
    period_from,
    visible_audit,
    visible_counter,
    visible_officer,
    visible_unit,
)
from collector.web.pages.common import RowId, page_number, page_vars, period_vars, render
from collector.web.pages.forms import Done, admin_form, carry_out, done_words

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
        status=422 if error else 200,
        users=users,
        roles=ROLES,
        units=[registry.units[u] for u in registry.subtree(me.unit)],
        unit_names={u.id: u.name for u in registry.units.values()},
        error=error,
        done=done_words(request, done, tuple(f"user_{a}" for a in USER_ACTIONS)),
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
    admin_form(me, csrf)
    visible_unit(me, registry, unit)

    def change() -> Done:
        Accounts(db).add_user(username.strip(), password, role=role, unit=unit, registry=registry)
        return Done("add_user", f"user:{username.strip()}", f"{role} @ {unit}", "user_add", {"name": username.strip()})

    return carry_out(
        me, db, change, "/admin/users", (AuthError, NotFound), lambda e: users_page(request, me, ctx, db, registry, e)
    )


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
    admin_form(me, csrf)
    accounts = Accounts(db)
    try:
        user = accounts.user(username)
    except AuthError:
        raise HTTPException(404, f"no user {username!r}") from None
    if not me.sees_unit(user.unit):
        raise HTTPException(404, f"no user {username!r}")
    if action not in USER_ACTIONS or action == "add":
        raise HTTPException(404, f"no action {action!r}")
    if user.username == me.username and action in ("disable", "edit"):
        return users_page(request, me, ctx, db, registry, error=i18n.text(f"no_self_{action}", lang_of(request)))

    def change() -> Done:
        detail = ""
        if action == "disable":
            accounts.disable(username)
        elif action == "enable":
            accounts.enable(username)
        elif action == "unlock":
            accounts.unlock(username)
        elif action == "passwd":
            accounts.set_password(username, password)
        else:  # edit
            if unit not in registry.units or not me.sees_unit(unit):
                raise AuthError(f"unit {unit!r}: not one of yours")
            accounts.set_grant(username, role=role, unit=unit, registry=registry)
            detail = f"{user.role} @ {user.unit} → {role} @ {unit}"
        return Done(f"user_{action}", f"user:{username}", detail, values={"name": username})

    return carry_out(
        me, db, change, "/admin/users", (AuthError, NotFound), lambda e: users_page(request, me, ctx, db, registry, e)
    )


USER_ACTIONS = ("disable", "enable", "unlock", "passwd", "edit", "add")


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> HTMLResponse:
    need(me, "admin")
    entries = visible_audit(me, registry, Accounts(db))
    return render(ctx, request, "audit.html", me, registry, entries=entries, tz=ctx.settings.tz)


ROSTER_DONE = (
    "add_officer",
    "edit_officer",
    "add_duty",
    "edit_duty",
    "duty_removed",
    "duty_ended",
    "duty_over",
    "import_roster",
)


@router.get("/admin/roster", response_class=HTMLResponse)
def roster_page(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, error: str = "", done: str = ""
) -> HTMLResponse:
    need(me, "admin")
    book = Officers(db, ctx.settings.tz)
    counters = [c for c in registry.counters.values() if c.unit in me.units]
    period = period_from(ctx, request)
    start, end = local_bounds(period.start, period.end, ctx.settings.tz)
    page = page_number(request)
    duties, total = book.duties_between(
        [c.id for c in counters], start, end, limit=DUTIES_PER_PAGE, offset=(page - 1) * DUTIES_PER_PAGE
    )
    officers = book.officers(me.units)
    unit_names = {u.id: u.name for u in registry.units.values()}
    return render(
        ctx,
        request,
        "roster.html",
        me,
        registry,
        status=422 if error else 200,
        officers=officers,
        # every officer a listed duty names, also one of a unit above (put on by its admin)
        officer_labels=officer_labels(book.officers(), unit_names),
        unit_names=unit_names,
        counter_names={c.id: c.name for c in counters},
        duties=duties,
        pager=page_vars(request, page, DUTIES_PER_PAGE, total),
        now=now_text(),
        counters=counters,
        units=[registry.units[u] for u in registry.subtree(me.unit)],
        error=error,
        done=done_words(request, done, ROSTER_DONE),
        tz=ctx.settings.tz,
        **period_vars(request, period),
    )


DUTIES_PER_PAGE = 200


def officer_labels(officers: Sequence[Any], unit_names: dict[str, str]) -> dict[str, str]:
    """What a person reads for each officer: the name with the unit, and the id too where two
    officers of one unit share a name (Vietnamese names repeat)."""
    seen = Counter((name_key(o.name), o.unit) for o in officers)
    return {
        o.id: f"{o.name} ({unit_names.get(o.unit, o.unit)}"
        + (f", {o.id})" if seen[(name_key(o.name), o.unit)] > 1 else ")")
        for o in officers
    }


def _roster_again(request: Request, me: Principal, ctx: WebContext, db: Store, registry: Registry) -> Any:
    return lambda error: roster_page(request, me, ctx, db, registry, error=error)


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
    """Add an officer; the same id again renames or moves one (within the admin's units)."""
    admin_form(me, csrf)
    visible_unit(me, registry, unit)
    book = Officers(db, ctx.settings.tz)
    ident = officer_id.strip()

    def change() -> Done:
        before = next((o for o in book.officers(me.units) if o.id == ident), None)
        book.add_officer(ident, name, unit, registry, within=me.units)
        if before is None:
            added = book.officer(ident).name
            return Done("add_officer", f"officer:{ident}", added, values={"name": added})
        after = book.officer(ident)
        detail = f"{before.name} @ {before.unit} → {after.name} @ {after.unit}"
        unchanged = (before.name, before.unit) == (after.name, after.unit)
        return Done("edit_officer", f"officer:{ident}", detail, values={"name": after.name}, changed=not unchanged)

    return carry_out(
        me, db, change, "/admin/roster", (RosterError, NotFound), _roster_again(request, me, ctx, db, registry)
    )


@router.get("/admin/officers/{officer_id}", response_class=HTMLResponse)
def officer_form(
    officer_id: str, request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, error: str = ""
) -> HTMLResponse:
    """An officer's name and unit, to put right."""
    need(me, "admin")
    officer = visible_officer(me, Officers(db, ctx.settings.tz), officer_id)
    return render(
        ctx,
        request,
        "roster_edit.html",
        me,
        registry,
        status=422 if error else 200,
        officer=officer,
        duty=None,
        units=[registry.units[u] for u in registry.subtree(me.unit)],
        error=error,
    )


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
    admin_form(me, csrf)
    visible_counter(me, registry, counter)
    book = Officers(db, ctx.settings.tz)
    tz = ctx.settings.tz

    def said(duty: Duty) -> str:
        return duty_words(book, registry, duty)

    def change() -> Done:
        visible_officer(me, book, officer)
        duty = book.duty(book.add_duty(officer, counter, parse_local(start, tz), parse_local(end, tz), registry))
        return Done("add_duty", f"counter:{counter}", f"{officer} {start} – {end}", values={"name": said(duty)})

    return carry_out(
        me, db, change, "/admin/roster", (RosterError, NotFound), _roster_again(request, me, ctx, db, registry)
    )


def duty_words(book: Officers, registry: Registry, duty: Duty) -> str:
    """A duty as the page says it: officer, counter, local times."""
    try:
        name = book.officer(duty.officer).name
    except NotFound:
        name = duty.officer
    counter = registry.counters[duty.counter].name if duty.counter in registry.counters else duty.counter
    return f"{name} — {counter}, {formats.moment(duty.start_at, book.tz)} – {formats.moment(duty.end_at, book.tz)}"


def _visible_duty(me: Principal, registry: Registry, book: Officers, duty_id: int) -> Duty:
    try:
        duty = book.duty(duty_id)
    except NotFound:
        raise HTTPException(404, "no such duty") from None
    if not me.sees_counter(registry, duty.counter):
        raise HTTPException(404, "no such duty")
    return duty


@router.get("/admin/duties/{duty_id}", response_class=HTMLResponse)
def duty_form(
    duty_id: RowId,
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    error: str = "",
    typed: dict[str, str] | None = None,
) -> HTMLResponse:
    """A duty's officer and times, to put right."""
    need(me, "admin")
    book = Officers(db, ctx.settings.tz)
    duty = _visible_duty(me, registry, book, duty_id)
    officers = book.officers(me.units)
    if duty.officer not in {o.id for o in officers}:  # put on by an admin above: it stays a choice
        officers.insert(0, book.officer(duty.officer))
    unit_names = {u.id: u.name for u in registry.units.values()}
    if typed:  # a refused change: what was typed, to put right
        duty = Duty(duty.id, typed.get("officer", duty.officer), duty.counter, duty.start_at, duty.end_at)
    return render(
        ctx,
        request,
        "roster_edit.html",
        me,
        registry,
        status=422 if error else 200,
        officer=None,
        duty=duty,
        officers=officers,
        officer_labels=officer_labels(officers, unit_names),
        counter_name=registry.counters[duty.counter].name,
        start=typed.get("start") if typed else local_text(duty.start_at, ctx.settings.tz),
        end=typed.get("end") if typed else local_text(duty.end_at, ctx.settings.tz),
        error=error,
    )


@router.post("/admin/duties/{duty_id}")
def edit_duty(
    duty_id: RowId,
    request: Request,
    me: PageUser,
    ctx: Ctx,
    db: Db,
    registry: Reg,
    officer: Annotated[str, Form()],
    start: Annotated[str, Form()],
    end: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Another officer or other times for a duty (checked against the counter's other duties)."""
    admin_form(me, csrf)
    book = Officers(db, ctx.settings.tz)
    current = _visible_duty(me, registry, book, duty_id)
    tz = ctx.settings.tz

    def said(duty: Duty) -> str:
        return duty_words(book, registry, duty)

    def change() -> Done:
        if officer != current.officer:  # another officer: one of the admin's own
            visible_officer(me, book, officer)
        before, after = book.edit_duty(duty_id, officer, parse_local(start, tz), parse_local(end, tz))
        detail = (
            f"{before.officer} {local_text(before.start_at, tz)} – {local_text(before.end_at, tz)}"
            f" → {after.officer} {local_text(after.start_at, tz)} – {local_text(after.end_at, tz)}"
        )
        return Done("edit_duty", f"counter:{before.counter}", detail, values={"name": said(after)})

    return carry_out(
        me,
        db,
        change,
        "/admin/roster",
        (RosterError, NotFound),
        lambda error: duty_form(
            duty_id, request, me, ctx, db, registry, error=error, typed={"officer": officer, "start": start, "end": end}
        ),
    )


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
    admin_form(me, csrf)
    book = Officers(db, ctx.settings.tz)
    duty = _visible_duty(me, registry, book, duty_id)

    def said(duty: Duty) -> str:
        return duty_words(book, registry, duty)

    def change() -> Done:
        outcome = book.end_duty(duty_id, now_text())
        now = duty if outcome == "removed" else book.duty(duty_id)  # as it is now (ended: its new end)
        detail = f"{duty.officer}: {outcome}"
        said_now = {"name": said(now)}
        return Done("end_duty", f"counter:{duty.counter}", detail, f"duty_{outcome}", said_now, outcome != "over")

    return carry_out(me, db, change, "/admin/roster", (), _roster_again(request, me, ctx, db, registry))


@router.post("/admin/roster.csv")
async def import_roster(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, file: UploadFile, csrf: Annotated[str, Form()] = ""
) -> Response:
    admin_form(me, csrf)
    text = (await file.read()).decode("utf-8-sig", errors="replace")

    def change() -> Done:  # only the admin's own counters and officers
        added = Officers(db, ctx.settings.tz).import_csv(text, registry, within=me.units)
        name = "".join(ch for ch in (file.filename or "")[:120] if unicodedata.category(ch) not in HIDDEN)
        return Done("import_roster", name or "roster.csv", f"{added} duties", values={"n": str(added)})

    return carry_out(me, db, change, "/admin/roster", (RosterError,), _roster_again(request, me, ctx, db, registry))


@router.get("/admin/rules", response_class=HTMLResponse)
def rules_page(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, error: str = "", done: str = ""
) -> HTMLResponse:
    need(me, "admin")
    book = AlertBook(db, ctx.settings)
    own = book.own_rules()
    rows = [(registry.units[u], book.rules_for(u, registry, own), u in own) for u in registry.subtree(me.unit)]
    return render(
        ctx,
        request,
        "rules.html",
        me,
        registry,
        status=422 if error else 200,
        rows=rows,
        keys=RULE_KEYS,
        error=error,
        done=done_words(request, done, ("set_alert_rules",)),
    )


@router.post("/admin/rules")
async def set_rules(request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg) -> Response:
    form = await request.form()
    admin_form(me, str(form.get("csrf", "")))
    unit = str(form.get("unit", ""))
    visible_unit(me, registry, unit)
    values = {k: str(form[k]) for k in RULE_KEYS if form.get(k)}

    def change() -> Done:
        AlertBook(db, ctx.settings).set_rules(unit, values, registry)
        return Done("set_alert_rules", f"unit:{unit}", str(values), values={"name": registry.units[unit].name})

    return carry_out(
        me,
        db,
        change,
        "/admin/rules",
        (RuleError, ConfigError, NotFound),
        lambda error: rules_page(request, me, ctx, db, registry, error=error),
    )
