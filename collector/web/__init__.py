"""The collector's web side: JSON API and inspectors' pages, built by :func:`create_app`."""

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from collector import i18n
from collector.anystore import Store
from collector.config import CollectorSettings
from collector.metrics import Metrics
from collector.web import api
from collector.web import pages as pages_module
from collector.web.context import LoginRequired, WebContext, base_vars, lang_of
from kiosk import __version__

STATIC = Path(__file__).resolve().parent / "static"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def api_docs_files() -> Path:
    """Swagger UI's JavaScript and CSS (a version that reads OpenAPI 3.1), from the fastapi-offline
    package, installed with the collector: /docs needs no network. (ReDoc is not offered: its page
    still loads a logo from the Internet.)"""
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def _url_of(store: Store) -> str:
    path = getattr(store, "path", None)
    return f"sqlite:///{path}" if path is not None else str(getattr(store, "url", ""))


def create_app(
    settings: CollectorSettings,
    store: Store,
    *,
    ingest_health: Callable[[], dict[str, Any]] | None = None,
    metrics: Metrics | None = None,
    pages: bool = True,
) -> FastAPI:
    """The app for one store; each request opens its own connection to the store's file.

    ``ingest_health`` (the ingestor's, when this process ingests) feeds ``/readyz``; ``metrics``
    (with the ingestor's figures, when it ingests) is served at ``/metrics``. Without ``pages``
    (an ingest-only process) only /healthz, /readyz and /metrics answer."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.web.close()  # the PostgreSQL pool, when there is one

    app = FastAPI(
        lifespan=lifespan,
        title="Satisfaction collector",
        version=__version__,
        description="Ratings from the one-stop counters' kiosks: summaries per counter and unit.",
        # /docs is served below from the collector's own Swagger UI files: FastAPI's pages load
        # theirs from a CDN, which an offline office LAN cannot reach (a blank page).
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = WebContext(settings, _url_of(store))
    if pages:
        app.include_router(api.router)
        app.include_router(pages_module.router)
        app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
        app.mount("/docs-assets", StaticFiles(directory=str(api_docs_files())), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        def docs() -> Response:
            return FileResponse(TEMPLATES / "docs.html", media_type="text/html")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        """Liveness: the process answers."""
        return {"ok": True, "version": __version__}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        """Readiness: the store answers and, when this process ingests, the broker is connected
        and ingest is not paused by a store outage. 503 says why not."""
        problems: list[str] = []
        try:
            db = app.state.web.open_store()
            try:
                db.ping()
            finally:
                db.close()
        except Exception as exc:
            problems.append(f"store: {exc}")
        detail: dict[str, Any] = {}
        if ingest_health is not None:
            detail = ingest_health()
            if not detail.get("broker"):
                problems.append("broker: not connected")
            if detail.get("outage"):
                problems.append(f"ingest paused, store outage: {detail['outage']}")
        body = {"ready": not problems, "problems": problems, **detail}
        return JSONResponse(body, status_code=200 if not problems else 503)

    metrics = metrics or Metrics()

    def statuses() -> dict[str, dict[str, Any]]:
        db = app.state.web.open_store()
        try:
            return db.kiosk_statuses()
        finally:
            db.close()

    metrics.watch_kiosks(statuses)
    app.state.metrics = metrics

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        """Prometheus text format; open like /healthz (figures only, no personal data)."""
        return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        status = 500
        try:
            response: Response = await call_next(request)
            status = response.status_code
            return response
        finally:
            # The route's template (/counters/{counter}), never the raw path: bounded label values.
            route = getattr(request.scope.get("route"), "path", None) or "unmatched"
            metrics.observe_request(request.method, route, status, started)

    @app.exception_handler(LoginRequired)
    def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.next_url}", status_code=303)

    def error_page(request: Request, status: int, detail: Any) -> Response:
        web: WebContext = app.state.web
        lang = lang_of(request)
        return web.templates.TemplateResponse(
            request,
            "error.html",
            {
                **base_vars(request, None, None),
                "status": status,
                "detail": i18n.error(detail, lang) if isinstance(detail, str) else detail,
                "lang": lang,
            },
            status_code=status,
        )

    def wants_page(request: Request) -> bool:
        return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")

    # Starlette's own (an unknown path, a wrong method) as well as the routes' HTTPException.
    @app.exception_handler(StarletteHTTPException)
    def errors(request: Request, exc: StarletteHTTPException) -> Response:
        if not wants_page(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> Response:
        """A path or query value of the wrong kind (/alerts/abc/press): a page for a browser, the
        usual 422 JSON for the API."""
        if not wants_page(request):
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        where = ", ".join(str(e.get("loc", ["?"])[-1]) for e in exc.errors()[:3])
        return error_page(request, 422, f"a value in the address is not what this page takes: {where}")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if settings.http.secure_cookies:  # served over HTTPS: browsers must never fall back to HTTP
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        # No inline scripts anywhere: an injected <script> or on…= attribute never runs. Swagger UI
        # (/docs) sets style attributes in its markup, so there styles may be inline.
        styles = "'self' 'unsafe-inline'" if request.url.path == "/docs" else "'self'"
        response.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; img-src 'self' data:; style-src {styles}; script-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
        return response

    return app
