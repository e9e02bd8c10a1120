"""Pages: log in and out."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from collector import i18n
from collector.accounts import Accounts, AuthError, TooMany
from collector.web.context import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Ctx,
    Db,
    PageUser,
    check_csrf,
    client_address,
    lang_of,
)
from collector.web.pages.common import render

router = APIRouter()


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
