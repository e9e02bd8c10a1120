"""What every request needs: a store connection of its own, the registry, who is asking."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool

from collector import formats, i18n
from collector.accounts import Accounts, AuthError, Principal, TooMany
from collector.anystore import Store
from collector.config import CollectorSettings
from collector.errors import NotFound
from collector.officers import Officer, Officers
from collector.periods import Period, parse_period
from collector.pgstore import PostgresStore, web_pool
from collector.registry import Registry
from collector.reports import Figures, figures_of
from collector.store import open_store

SESSION_COOKIE = "sat_session"
LANG_COOKIE = "lang"
TEMPLATES = Path(__file__).resolve().parent / "templates"


class LoginRequired(Exception):
    """A page was asked for without a session: the handler sends the browser to /login."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class WebContext:
    def __init__(self, settings: CollectorSettings, store_url: str, *, registry_ttl_s: float = 5.0) -> None:
        self.settings = settings
        self.store_url = store_url
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.templates.env.globals.update(
            fmt=formats, t=i18n.text, SCORE_LABELS=i18n.SCORE_LABELS, WEEKDAYS=i18n.WEEKDAYS
        )
        self._registry: Registry | None = None
        self._loaded = 0.0
        self._ttl = registry_ttl_s
        self._lock = threading.Lock()
        self._pool: ConnectionPool[Any] | None = None

    def open_store(self) -> Store:
        """A store for one request: SQLite opens the file (cheap); PostgreSQL borrows a
        connection from the pool made at the first request."""
        if not self.store_url.startswith(("postgresql://", "postgres://")):
            return open_store(self.store_url)
        with self._lock:
            if self._pool is None:
                open_store(self.store_url).close()  # migrated, or a clear StoreUnreachable
                self._pool = web_pool(self.store_url)
        return PostgresStore.borrowed(self.store_url, self._pool)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def registry(self, store: Store) -> Registry:
        with self._lock:
            if self._registry is None or time.monotonic() - self._loaded > self._ttl:
                self._registry = store.load_registry()
                self._loaded = time.monotonic()
            return self._registry

    def forget_registry(self) -> None:
        with self._lock:
            self._registry = None

    def today(self) -> date:
        return datetime.now(self.settings.tz).date()


def context(request: Request) -> WebContext:
    return request.app.state.web  # type: ignore[no-any-return]


Ctx = Annotated[WebContext, Depends(context)]


def get_db(ctx: Ctx) -> Iterator[Store]:
    store = ctx.open_store()
    try:
        yield store
    finally:
        store.close()


Db = Annotated[Store, Depends(get_db)]


def get_registry(ctx: Ctx, db: Db) -> Registry:
    return ctx.registry(db)


Reg = Annotated[Registry, Depends(get_registry)]


def _from_session(request: Request, db: Store, registry: Registry) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    accounts = Accounts(db)
    found = accounts.session(token)
    if found is None:
        return None
    return accounts.principal(found[0], registry, csrf=found[1])


def client_address(request: Request) -> str:
    """The address failed logins are counted against (the peer; a proxy in front is one address)."""
    return request.client.host if request.client else "unknown"


def _from_header(request: Request, db: Store, registry: Registry) -> Principal | None:
    """HTTP Basic credentials or an API token (``Authorization: Bearer sat_…``); None without either."""
    header = request.headers.get("authorization", "")
    challenge = {"WWW-Authenticate": 'Basic realm="collector"'}
    accounts = Accounts(db)
    if header[:7].lower() == "bearer ":
        username = accounts.token_user(header[7:].strip())
        found = accounts.principal(username, registry) if username else None
        if found is None:
            raise HTTPException(401, "unknown or revoked API token", headers={"WWW-Authenticate": "Bearer"})
        return found
    if header[:6].lower() == "basic ":
        try:
            username, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise HTTPException(401, "malformed Basic credentials", headers=challenge) from None
        try:
            accounts.verify(username, password, address=client_address(request))
        except TooMany as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": "60"}) from None
        except AuthError as exc:
            raise HTTPException(401, str(exc), headers=challenge) from None
        found = accounts.principal(username, registry)
        if found is None:
            raise HTTPException(401, "this account cannot use the API", headers=challenge)
        return found
    return None


# Declared for the OpenAPI document (Swagger UI's "Authorize"): the three ways in. They never refuse
# by themselves (auto_error off); api_user below decides.
_BASIC = HTTPBasic(auto_error=False, description="a user's name and password")
_TOKEN = HTTPBearer(auto_error=False, description="an API token (`collector token add`)")
_SESSION = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="the session of a logged-in browser")


def api_user(
    request: Request,
    db: Db,
    registry: Reg,
    _basic: Annotated[HTTPBasicCredentials | None, Security(_BASIC)] = None,
    _token: Annotated[HTTPAuthorizationCredentials | None, Security(_TOKEN)] = None,
    _session: Annotated[str | None, Security(_SESSION)] = None,
) -> Principal:
    """The session's user, HTTP Basic credentials or an API token (for scripts and warehouses)."""
    principal = _from_session(request, db, registry) or _from_header(request, db, registry)
    if principal is not None:
        return principal
    raise HTTPException(
        401,
        "log in, or send HTTP Basic credentials or an API token",
        headers={"WWW-Authenticate": 'Basic realm="collector"'},
    )


def export_user(request: Request, db: Db, registry: Reg) -> Principal:
    """Exports (CSV, XLSX, PDF): a session, Basic or a token; a browser without any goes to log in."""
    principal = _from_session(request, db, registry) or _from_header(request, db, registry)
    if principal is not None:
        return principal
    raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))


def visible_audit(me: Principal, registry: Registry, accounts: Accounts) -> list[tuple[str, str, str, str, str]]:
    """The audit log as an admin may see it: everything for an admin of a top unit; otherwise
    what the users of their units did."""
    entries = accounts.audit_log()
    if me.unit in {u.id for u in registry.roots()}:
        return entries
    mine = {u.username for u in accounts.users() if u.unit in me.units}
    return [e for e in entries if e[1] in mine]


def sees_quarantine_entry(me: Principal, registry: Registry, topic: str) -> bool:
    """A quarantined message belongs to the unit of the kiosk in its topic; one whose kiosk is not
    registered (or no kiosk at all) only to an admin of a top unit."""
    parts = topic.split("/")
    kiosk = parts[parts.index("k") + 1] if "k" in parts[:-1] else None
    if kiosk is not None and kiosk in registry.kiosks:
        return me.sees_kiosk(registry, kiosk)
    return me.unit in {u.id for u in registry.roots()}


def page_user(request: Request, db: Db, registry: Reg) -> Principal:
    principal = _from_session(request, db, registry)
    if principal is None:
        raise LoginRequired(str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))
    return principal


ApiUser = Annotated[Principal, Depends(api_user)]
ExportUser = Annotated[Principal, Depends(export_user)]
PageUser = Annotated[Principal, Depends(page_user)]


def need(principal: Principal, role: str) -> None:
    if not principal.can(role):
        raise HTTPException(403, f"this needs the {role} role")


def visible_unit(principal: Principal, registry: Registry, unit_id: str) -> None:
    """404 for a unit that does not exist *or* is outside the user's grant: do not reveal which."""
    if unit_id not in registry.units or not principal.sees_unit(unit_id):
        raise HTTPException(404, f"no unit {unit_id!r}")


def visible_counter(principal: Principal, registry: Registry, counter_id: str) -> None:
    if not principal.sees_counter(registry, counter_id):
        raise HTTPException(404, f"no counter {counter_id!r}")


def visible_officer(principal: Principal, book: Officers, officer_id: str) -> Officer:
    """The officer, if the user's grant covers the officer's unit; 404 otherwise."""
    try:
        person = book.officer(officer_id)
    except NotFound:
        raise HTTPException(404, f"no officer {officer_id!r}") from None
    if not principal.sees_unit(person.unit):
        raise HTTPException(404, f"no officer {officer_id!r}")
    return person


def officer_figures(
    principal: Principal, registry: Registry, book: Officers, officer_id: str, day_from: date, day_to: date
) -> tuple[Figures, dict[str, Figures]]:
    """The officer's figures while on duty, in total and per counter, counting only visible counters."""
    per_counter = {
        c: s
        for c, s in book.officer_by_counter(officer_id, day_from, day_to).items()
        if principal.sees_counter(registry, c)
    }
    total = {s: sum(v[s] for v in per_counter.values()) for s in (1, 2, 3, 4)}
    return figures_of(total), {c: figures_of(s) for c, s in sorted(per_counter.items())}


def check_csrf(principal: Principal, token: str | None) -> None:
    if not principal.csrf or token != principal.csrf:
        raise HTTPException(403, "the form expired; reload the page and try again")


def period_from(ctx: WebContext, request: Request) -> Period:
    q = request.query_params
    try:
        return parse_period(
            q.get("period") or None, _day(q.get("at")), _day(q.get("from")), _day(q.get("to")), ctx.today()
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"date {text!r} must be YYYY-MM-DD") from None


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "vi")
    return lang if lang in i18n.LANGS else "vi"


def base_vars(request: Request, principal: Principal | None, registry: Registry | None) -> dict[str, Any]:
    lang = lang_of(request)
    return {
        "request": request,
        "me": principal,
        "lang": lang,
        "tr": lambda key: i18n.text(key, lang),
        "audit_action": lambda action: i18n.audit_action(action, lang),
        "word": lambda kind, value: i18n.word(kind, value, lang),
        "labels": i18n.SCORE_LABELS[lang],
        "pct": lambda x: formats.percent(x, lang),
        "num": lambda n: formats.number(n, lang),
        "dec": lambda x, digits=1: formats.decimal(x, lang, digits),
        "grant_name": registry.units[principal.unit].name if principal and registry else "",
    }
