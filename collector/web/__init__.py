"""The collector's web side: JSON API and inspectors' pages, built by :func:`create_app`."""

from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from collector.config import CollectorSettings
from collector.store import SqliteStore
from collector.web import api, pages
from collector.web.context import LoginRequired, WebContext, base_vars, lang_of
from kiosk import __version__

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: CollectorSettings, store: SqliteStore) -> FastAPI:
    """The app for one store; each request opens its own connection to the store's file."""
    app = FastAPI(
        title="Satisfaction collector",
        version=__version__,
        description="Ratings from the one-stop counters' kiosks: summaries per counter and unit.",
    )
    app.state.web = WebContext(settings, store.path)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        return {"ok": True, "version": __version__}

    @app.exception_handler(LoginRequired)
    def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    @app.exception_handler(HTTPException)
    def errors(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        web: WebContext = app.state.web
        return web.templates.TemplateResponse(
            request,
            "error.html",
            {
                **base_vars(request, None, None),
                "status": exc.status_code,
                "detail": exc.detail,
                "lang": lang_of(request),
            },
            status_code=exc.status_code,
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(("/docs", "/redoc")):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            )
        return response

    return app
