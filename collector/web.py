"""The collector's HTTP side: the JSON API of the contract (and, later, the inspectors' pages)."""

import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from collector import reports
from collector.config import CollectorSettings
from collector.errors import NotFound
from collector.registry import Registry
from collector.store import SqliteStore
from kiosk import __version__

MAX_RANGE_DAYS = 3660


class StoreAccess:
    """One store connection for the web threads, used one request at a time; registry cached."""

    def __init__(self, store: SqliteStore, *, registry_ttl_s: float = 5.0) -> None:
        self.store = store
        self.lock = threading.Lock()
        self._registry: Registry | None = None
        self._loaded = 0.0
        self._ttl = registry_ttl_s

    def registry(self) -> Registry:
        if self._registry is None or time.monotonic() - self._loaded > self._ttl:
            self._registry = self.store.load_registry()
            self._loaded = time.monotonic()
        return self._registry

    def run(self, work: Callable[[SqliteStore, Registry], Any]) -> Any:
        with self.lock:
            try:
                return work(self.store, self.registry())
            except NotFound as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None


def create_app(settings: CollectorSettings, store: SqliteStore) -> FastAPI:
    access = StoreAccess(store)
    app = FastAPI(
        title="Satisfaction collector",
        version=__version__,
        description="Ratings from the one-stop counters' kiosks: summaries per counter and unit.",
    )

    def period(
        from_: Annotated[date | None, Query(alias="from", description="first local day, YYYY-MM-DD")] = None,
        to: Annotated[date | None, Query(description="last local day (inclusive), YYYY-MM-DD")] = None,
    ) -> tuple[date, date]:
        today = datetime.now(settings.tz).date()
        day_to = to or today
        day_from = from_ or (day_to - timedelta(days=29))
        if day_from > day_to:
            raise HTTPException(status_code=422, detail=f"from ({day_from}) is after to ({day_to})")
        if (day_to - day_from).days > MAX_RANGE_DAYS:
            raise HTTPException(status_code=422, detail=f"a period is at most {MAX_RANGE_DAYS} days")
        return day_from, day_to

    Period = Annotated[tuple[date, date], Depends(period)]

    @app.get("/api/v1/counters/{counter}/summary")
    def counter_summary(counter: str, days: Period) -> dict[str, Any]:
        return access.run(lambda s, r: reports.summarise_counter(s, r, counter, *days))

    @app.get("/api/v1/units/{unit}/summary")
    def unit_summary(unit: str, days: Period) -> dict[str, Any]:
        return access.run(lambda s, r: reports.summarise_unit(s, r, unit, *days))

    @app.get("/api/v1/units")
    def units() -> dict[str, Any]:
        def tree(s: SqliteStore, r: Registry) -> dict[str, Any]:
            def node(unit_id: str) -> dict[str, Any]:
                u = r.unit(unit_id)
                return {
                    "id": u.id,
                    "name": u.name,
                    "level": u.level,
                    "counters": [{"id": c.id, "name": c.name} for c in r.own_counters(u.id)],
                    "children": [node(c.id) for c in r.child_units(u.id)],
                }

            return {"units": [node(u.id) for u in r.roots()]}

        return access.run(tree)

    @app.get("/api/v1/kiosks")
    def kiosks() -> dict[str, Any]:
        return {"kiosks": access.run(reports.kiosk_health)}

    @app.get("/api/v1/quarantine")
    def quarantine(limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        def listing(s: SqliteStore, r: Registry) -> dict[str, Any]:
            return {
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
                    for e in s.quarantined(limit=limit)
                ]
            }

        return access.run(listing)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        def page(s: SqliteStore, r: Registry) -> str:
            rows = "".join(f'<li><a href="/api/v1/units/{u.id}/summary">{u.name}</a></li>' for u in r.roots())
            return (
                f"<!doctype html><html lang=vi><meta charset=utf-8><title>Mức độ hài lòng</title>"
                f"<h1>Mức độ hài lòng — collector {__version__}</h1><ul>{rows}</ul>"
                f'<p><a href="/api/v1/kiosks">Kiosks</a> · <a href="/docs">API</a></p></html>'
            )

        return access.run(page)

    return app
