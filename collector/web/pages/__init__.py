"""The inspectors' pages: server-rendered HTML, readable on a phone and a desk screen.

Every table a page shows is built once by a ``*_table`` function and used for the page and for
its CSV/XLSX export, so the files carry the same numbers as the screen.

One module per feature (auth, units, counters, raw ratings, review — flagged presses, pictures,
kiosks, alerts —, admin, registry, settings, kiosk), what they share in ``common``. Their routers
are included in this order, the order the paths were matched in when this was one file.
"""

from fastapi import APIRouter

from collector.web.pages import admin, auth, counters, kiosk, raw, registry, review, settings, units

router = APIRouter()
router.include_router(auth.router)
router.include_router(units.router)
router.include_router(counters.router)
router.include_router(raw.router)
router.include_router(review.router)
router.include_router(admin.router)
router.include_router(registry.router)
router.include_router(settings.router)
router.include_router(kiosk.router)
