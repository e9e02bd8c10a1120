"""The summary API over a real SQLite store."""

from datetime import date

import pytest

from tests.ratings import make_rating, store_ratings


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


@pytest.fixture
def api(client_for):
    return client_for("admin")


def add(store, settings, counter, scores, pressed_at="2026-11-22T02:15:02.123Z", flag=None, kiosk="k-x"):
    ratings = [
        make_rating(counter=counter, score=s, seq=i + 1, pressed_at=pressed_at, flag=flag) for i, s in enumerate(scores)
    ]
    store_ratings(store, ratings, tz=settings.tz, kiosk=kiosk)


def test_counter_summary_has_contract_fields(api, store, settings):
    add(store, settings, "vb-q1", [4, 4, 3, 2, 1])
    add(store, settings, "vb-q1", [1], flag="lockout")
    body = api.get("/api/v1/counters/vb-q1/summary?from=2026-11-22&to=2026-11-22").json()
    assert body["total"] == 5
    assert body["by_score"] == {"1": 1, "2": 1, "3": 1, "4": 2}
    assert body["satisfaction_rate"] == 0.6
    assert body["average"] == 2.8
    assert body["index"] == 60.0
    assert body["flagged"] == 1
    assert body["name"] == "Quầy 1 — Đất đai (Văn Bàn)"
    assert body["days"] == [
        {
            "day": "2026-11-22",
            **{
                k: body[k]
                for k in ("total", "by_score", "satisfaction_rate", "average", "index", "flagged", "unsynced")
            },
        }
    ]


def test_unit_summary_rolls_up_the_subtree_with_children(api, store, settings):
    add(store, settings, "kyh-q1", [4, 4, 1])  # commune Khánh Yên Hạ, under Văn Bàn
    add(store, settings, "vb-q2", [3])  # Văn Bàn's own counter
    add(store, settings, "sp-q1", [2, 1])  # Sa Pa
    province = api.get("/api/v1/units/10/summary?from=2026-11-01&to=2026-11-30").json()
    assert province["total"] == 6
    assert province["satisfaction_rate"] == 0.5
    district = api.get("/api/v1/units/10.085/summary?from=2026-11-01&to=2026-11-30").json()
    assert district["total"] == 4 and district["satisfaction_rate"] == 0.75
    children = {c["id"]: c for c in district["children"]}
    assert children["10.085.02953"]["kind"] == "unit" and children["10.085.02953"]["total"] == 3
    assert children["vb-q2"]["kind"] == "counter" and children["vb-q2"]["by_score"]["3"] == 1
    assert children["vb-q1"]["total"] == 0 and children["vb-q1"]["satisfaction_rate"] is None
    assert [p["id"] for p in district["path"]] == ["10", "10.085"]
    assert len(district["days"]) == 30


def test_day_boundary_is_local_time(api, store, settings):
    add(store, settings, "vb-q1", [4], pressed_at="2026-11-21T18:30:00.000Z")  # 01:30 on 22 Nov in UTC+7
    on_21 = api.get("/api/v1/counters/vb-q1/summary?from=2026-11-21&to=2026-11-21").json()
    on_22 = api.get("/api/v1/counters/vb-q1/summary?from=2026-11-22&to=2026-11-22").json()
    assert (on_21["total"], on_22["total"]) == (0, 1)


def test_empty_period_gives_null_rate_not_an_error(api):
    body = api.get("/api/v1/units/10/summary?from=2020-01-01&to=2020-01-31").json()
    assert body["total"] == 0
    assert body["satisfaction_rate"] is None and body["average"] is None and body["index"] is None


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/v1/counters/nope/summary", 404),
        ("/api/v1/units/99/summary", 404),
        ("/api/v1/units/10/summary?from=2026-13-01", 422),
        ("/api/v1/units/10/summary?from=yesterday", 422),
        ("/api/v1/units/10/summary?from=2026-11-30&to=2026-11-01", 422),
        ("/api/v1/units/10/summary?from=2000-01-01&to=2026-11-01", 422),
    ],
)
def test_clear_errors_for_unknown_ids_and_bad_dates(api, url, status):
    response = api.get(url)
    assert response.status_code == status
    assert response.json()["detail"]


def test_api_needs_credentials(api, settings, store):
    from fastapi.testclient import TestClient

    from collector.web import create_app

    anonymous = TestClient(create_app(settings, store))
    response = anonymous.get("/api/v1/units/10/summary")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Basic")
    assert anonymous.get("/api/v1/units/10/summary", auth=("admin", "wrong password")).status_code == 401
    assert anonymous.get("/openapi.json").status_code == 200


def test_kiosks_list_health_and_openapi(api):
    kiosks = api.get("/api/v1/kiosks").json()["kiosks"]
    assert len(kiosks) == 12 and kiosks[0]["state"] == "never_seen" and kiosks[0]["online"] is False
    spec = api.get("/openapi.json").json()
    assert "/api/v1/units/{unit}/summary" in spec["paths"]
    assert "/api/v1/counters/{counter}/summary" in spec["paths"]
    # the files BI tools fetch say what they are (they were documented as JSON)
    raw = spec["paths"]["/units/{unit}/ratings.{kind}"]["get"]["responses"]["200"]["content"]
    assert set(raw) == {"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    assert set(spec["paths"]["/snapshots/{rating_id}.jpg"]["get"]["responses"]["200"]["content"]) == {"image/jpeg"}


def test_every_api_answer_is_a_typed_model_in_the_openapi_and_answers_are_unchanged(api, store, settings):
    """Each GET of /api/v1 names its answer's model (with its fields) in /openapi.json, and the
    answer is what the route built: no field added (a day series gains no "months": null), none
    renamed ("from" stays "from")."""
    from collector import reports

    spec = api.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    paths = [p for p in spec["paths"] if p.startswith("/api/v1/")]
    assert len(paths) == 8
    for path in paths:
        answer = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        model = schemas[answer["$ref"].rsplit("/", 1)[1]]
        assert model.get("properties"), path
    assert "from" in schemas["CounterSummary"]["properties"]
    assert schemas["AlertOut"]["properties"]["facts"]
    add(store, settings, "vb-q1", [4, 3, 1])
    registry = store.load_registry()
    built = reports.summarise_counter(
        store, registry, "vb-q1", date(2026, 11, 1), date(2026, 11, 30), tz=settings.tz
    ).to_dict()
    body = api.get("/api/v1/counters/vb-q1/summary?from=2026-11-01&to=2026-11-30").json()
    assert set(body) == set(built) and "months" not in body and body["from"] == "2026-11-01"
    assert body["days"] == built["days"]
    year = api.get("/api/v1/units/10/summary?from=2026-01-01&to=2026-12-31").json()
    assert "months" in year and "days" not in year
