"""For every route: a user granted another unit gets 403 or 404 and sees nothing of Văn Bàn.

The route list is read from the app itself, so a new route without an entry here fails the test.
"""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from collector.alerts import AlertBook
from collector.officers import Officers
from kiosk import wire
from kiosk.ids import uuid7
from tests.collector.conftest import PASSWORD
from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


NOW = datetime.now(UTC)
VB_RATING = uuid7()
SECRETS = ("vb-q1", "k-vb-q1", "Văn Bàn", "Nguyễn Thị Bình", "Quầy 1 — Đất đai (Văn Bàn)")


@pytest.fixture
def world(store, settings, users, tmp_path):
    """Ratings, a snapshot, an officer on duty, a kiosk status and an alert in Văn Bàn; a rating in Sa Pa."""
    registry = store.load_registry()
    picture = tmp_path / "vb.jpg"
    picture.write_bytes(b"\xff\xd8 citizen at vb-q1")

    def at(minutes_ago):
        return wire.format_time(NOW - timedelta(minutes=minutes_ago))

    store_ratings(
        store,
        [make_rating(id=VB_RATING, counter="vb-q1", score=1, pressed_at=at(30))],
        tz=settings.tz,
        kiosk="k-vb-q1",
        received_at=at(0),
    )
    store_ratings(
        store,
        [make_rating(counter="sp-q1", score=4, pressed_at=at(20))],
        tz=settings.tz,
        kiosk="k-sp-q1",
        received_at=at(0),
    )
    with store.transaction():
        store.add_snapshot(VB_RATING, "a" * 64, str(picture), 20, wire.format_time(NOW))
        for kiosk in ("k-vb-q1", "k-sp-q1"):
            store.record_status(
                kiosk, {"v": 1, "kiosk": kiosk, "state": "online", "at": wire.format_time(NOW)}, wire.format_time(NOW)
            )
    officers = Officers(store, settings.tz)
    officers.add_officer("o-vb-1", "Nguyễn Thị Bình", "10.085", registry)
    duty_id = officers.add_duty(
        "o-vb-1",
        "vb-q1",
        wire.format_time(NOW - timedelta(hours=2)),
        wire.format_time(NOW + timedelta(hours=2)),
        registry,
    )
    alert = AlertBook(store, settings).open_alert(
        "dissatisfied", "vb-q1", "10.085", {"counter": "vb-q1", "counter_name": "Văn Bàn vb-q1", "minutes": 5}, NOW
    )
    return {
        "unit": "10.085",
        "counter": "vb-q1",
        "officer": "o-vb-1",
        "officer_id": "o-vb-1",
        "rating_id": VB_RATING,
        "alert_id": str(alert.id),
        "duty_id": str(duty_id),
        "username": "vanban",
        "action": "disable",
        "kiosk": "k-vb-q1",
    }


# How each route is reached by someone outside Văn Bàn, and what it must answer.
# "hidden": 404 (the object is outside the grant); "role": 403 for that user's role;
# "list": 200, but nothing of Văn Bàn in it; "public": no login needed.
ROUTES = {
    ("GET", "/api/v1/counters/{counter}/summary"): "hidden",
    ("GET", "/api/v1/units/{unit}/summary"): "hidden",
    ("GET", "/api/v1/units"): "list",
    ("GET", "/api/v1/kiosks"): "list",
    ("GET", "/api/v1/officers/{officer}/summary"): "hidden",
    ("GET", "/api/v1/units/{unit}/officers"): "hidden",
    ("GET", "/api/v1/alerts"): "list",
    ("GET", "/api/v1/quarantine"): "role",
    ("GET", "/login"): "public",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "csrf",
    ("GET", "/lang/{lang}"): "public",
    ("GET", "/"): "list",
    ("GET", "/units/{unit}"): "hidden",
    ("GET", "/units/{unit}/table.{kind}"): "hidden",
    ("GET", "/units/{unit}/three-level.{kind}"): "hidden",
    ("GET", "/units/{unit}/ratings.{kind}"): "hidden",
    ("GET", "/units/{unit}/report.pdf"): "hidden",
    ("GET", "/counters/{counter}"): "hidden",
    ("GET", "/counters/{counter}/days.{kind}"): "hidden",
    ("GET", "/counters/{counter}/ratings.{kind}"): "hidden",
    ("GET", "/counters/{counter}/report.pdf"): "hidden",
    ("GET", "/officers/{officer}"): "hidden",
    ("GET", "/flagged"): "list",
    ("POST", "/flagged/{rating_id}/review"): "hidden",
    ("POST", "/flagged/review"): "hidden",
    ("GET", "/compare"): "hidden",
    ("GET", "/snapshots/{rating_id}.jpg"): "hidden",
    ("GET", "/ratings/{rating_id}"): "hidden",
    ("GET", "/kiosks"): "list",
    ("GET", "/kiosks.{kind}"): "list",
    ("GET", "/alerts"): "list",
    ("POST", "/alerts/{alert_id}/ack"): "hidden",
    ("GET", "/alerts/{alert_id}/press"): "hidden",
    ("GET", "/admin/users"): "role",
    ("POST", "/admin/users"): "role",
    ("POST", "/admin/users/{username}/{action}"): "role",
    ("GET", "/admin/audit"): "role",
    ("GET", "/admin/roster"): "role",
    ("POST", "/admin/officers"): "role",
    ("POST", "/admin/duties"): "role",
    ("POST", "/admin/duties/{duty_id}/end"): "role",
    ("GET", "/admin/duties/{duty_id}"): "role",
    ("POST", "/admin/duties/{duty_id}"): "role",
    ("GET", "/admin/officers/{officer_id}"): "role",
    ("POST", "/admin/roster.csv"): "role",
    ("GET", "/admin/rules"): "role",
    ("POST", "/admin/rules"): "role",
    ("GET", "/admin/settings"): "role",
    ("GET", "/kiosks/{kiosk}"): "hidden",
    ("POST", "/kiosks/{kiosk}/selftest"): "role",
    ("POST", "/kiosks/{kiosk}/update"): "role",
    ("GET", "/admin/settings/unit/{unit}"): "role",
    ("POST", "/admin/settings/unit/{unit}"): "role",
    ("GET", "/admin/settings/kiosk/{kiosk}"): "role",
    ("POST", "/admin/settings/kiosk/{kiosk}"): "role",
    ("GET", "/admin/registry"): "role",
    ("GET", "/admin/registry.toml"): "role",
    ("POST", "/admin/registry"): "role",
    ("GET", "/healthz"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "public",
}


# Routes that name what they are about in the query: the URL an outsider tries (each of them).
QUERIES = {
    ("GET", "/compare"): ["?unit={unit}", "?counter={counter}"],
}


def app_routes(client):
    """(method, path) of every route, looking inside included routers (FastAPI nests them)."""
    out = set()
    stack = list(client.app.routes)
    while stack:
        route = stack.pop()
        if isinstance(route, APIRoute):
            out.update((method, route.path) for method in route.methods)
        elif hasattr(route, "original_router"):
            stack.extend(route.original_router.routes)
    return out


def test_every_route_has_an_access_rule(client_for):
    assert app_routes(client_for("admin")) == set(ROUTES)


def login(client, name):
    client.auth = None
    response = client.post("/login", data={"username": name, "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get("/kiosks").text
    return page.split('name="csrf" value="')[1].split('"')[0]


@pytest.mark.parametrize("user", ["sapa", "sapa-inspector"])
@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_outsiders_get_403_or_404_and_see_nothing(client_for, world, user, method, path):
    rule = ROUTES[(method, path)]
    if rule == "public":
        return
    client = client_for(user)
    csrf = login(client, user) if not path.startswith("/api/") else ""
    kinds = ["csv", "xlsx", "pdf"] if "{kind}" in path else [None]
    for kind, query in [(k, q) for k in kinds for q in QUERIES.get((method, path), [""])]:
        url = (path + query).format(**world, kind=kind, lang="en")
        data = {
            "csrf": csrf,
            "comment": "x",
            "username": "evil123456",
            "password": "x" * 12,
            "role": "admin",
            "unit": "10.085",
            "officer_id": "o-x",
            "name": "X",
            "officer": "o-vb-1",
            "counter": "vb-q1",
            "start": "2026-11-23 07:30",
            "end": "2026-11-23 17:00",
            "id": [world["rating_id"]],
        }
        files = None
        if "roster.csv" in path:
            files = {"file": ("r.csv", b"o-vb-1,vb-q1,2026-11-24 07:30,2026-11-24 11:00\n")}
        elif path == "/admin/registry":
            files = {"file": ("r.toml", b'[[unit]]\nid = "x"\nname = "X"\n')}
        response = client.request(
            method, url, data=data if method == "POST" else None, files=files, follow_redirects=False
        )
        body = response.content.decode("utf-8", "replace")
        if rule == "hidden":
            assert response.status_code in (403, 404), (url, response.status_code)
        elif rule == "role":
            assert response.status_code == 403, (url, response.status_code)
        elif rule == "csrf":
            assert response.status_code in (303, 403)
            continue
        else:
            assert response.status_code in (200, 403, 404), (url, response.status_code)
        for secret in SECRETS:
            if secret not in url:  # a 404 may repeat the id that was asked for, nothing more
                assert secret not in body, (url, secret)


def test_insider_sees_the_same_routes(client_for, world):
    """The same requests by the Văn Bàn inspector succeed: the 404s above are about the grant."""
    client = client_for("vanban")
    for path in ("/api/v1/counters/vb-q1/summary", "/api/v1/units/10.085/summary", "/api/v1/officers/o-vb-1/summary"):
        assert client.get(path).status_code == 200, path
    login(client, "vanban")
    for path in (
        "/units/10.085",
        "/counters/vb-q1",
        "/officers/o-vb-1",
        f"/snapshots/{VB_RATING}.jpg",
        "/units/10.085/three-level.xlsx",
        "/counters/vb-q1/days.csv",
        "/flagged",
        "/kiosks",
        f"/ratings/{VB_RATING}",
        "/compare?unit=10.085",
        "/compare?counter=vb-q1",
    ):
        assert client.get(path).status_code == 200, path
    assert "Văn Bàn" in client.get("/kiosks").text


def test_viewer_may_not_see_snapshots_even_in_their_unit(client_for, world, store, settings):
    client = client_for("sapa")
    login(client, "sapa")
    assert client.get("/flagged").status_code == 403
    assert client.get(f"/snapshots/{VB_RATING}.jpg").status_code == 403


def test_snapshot_views_and_exports_are_audited(client_for, world, store):
    from collector.accounts import Accounts

    client = client_for("vanban")
    login(client, "vanban")
    client.get(f"/snapshots/{VB_RATING}.jpg")
    client.get("/units/10.085/table.xlsx")
    actions = [(e[1], e[2], e[3]) for e in Accounts(store).audit_log()]
    assert ("vanban", "view_snapshot", f"rating:{VB_RATING}") in actions
    assert ("vanban", "export_xlsx", "unit:10.085") in actions
