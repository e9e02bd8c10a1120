"""The web's input boundaries under generated input: the login form, the admin forms, the registry
TOML and roster CSV uploads. Nothing answers 500, and a refused upload changes nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.officers import Officers
from collector.web import create_app
from tests.collector.conftest import PASSWORD, REGISTRY

FUZZ = settings(
    derandomize=True,
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "\x00", "admin", "10", "../../etc/passwd", "'; DROP TABLE users;--", "é" * 300]),
)


@pytest.fixture
def admin_page(settings, store, users):
    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    csrf = client.get("/admin/roster").text.split('name="csrf" value="')[1].split('"')[0]
    return client, csrf


@FUZZ
@given(username=texts, password=texts, next_url=texts)
def test_the_login_form_never_fails(settings, store, users, username, password, next_url):
    client = TestClient(create_app(settings, store), raise_server_exceptions=False)
    answer = client.post(
        "/login", data={"username": username, "password": password, "next": next_url}, follow_redirects=False
    )
    assert answer.status_code in (303, 401, 422, 429), answer.text[:200]
    if answer.status_code == 303:
        location = answer.headers["location"]
        assert location.startswith("/") and not location.startswith("//")  # never off-site


@FUZZ
@given(officer_id=texts, name=texts, unit=texts, counter=texts, start=texts, end=texts)
def test_admin_forms_never_fail(admin_page, officer_id, name, unit, counter, start, end):
    client, csrf = admin_page
    for path, data in (
        ("/admin/officers", {"officer_id": officer_id, "name": name, "unit": unit}),
        ("/admin/duties", {"officer": officer_id, "counter": counter, "start": start, "end": end}),
        ("/admin/users", {"username": officer_id, "password": name, "role": unit, "unit": counter}),
        ("/admin/rules", {"unit": unit, "dissatisfied_share": start, "window_h": end}),
    ):
        answer = client.post(path, data={"csrf": csrf, **data}, follow_redirects=False)
        assert answer.status_code < 500, (path, data, answer.text[:300])


csv_lines = st.lists(
    st.one_of(
        st.lists(texts, max_size=5).map(lambda cells: ",".join(cells)),
        st.sampled_from(["o-vb-1,vb-q1,2026-11-24 07:30,2026-11-24 11:00", "officer,counter,start,end", "\x00,a"]),
    ),
    max_size=6,
).map(lambda lines: "\n".join(lines))


@FUZZ
@given(text=csv_lines, encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_roster_uploads_never_fail_and_a_refused_one_changes_nothing(admin_page, store, settings, text, encoding):
    client, csrf = admin_page
    book = Officers(store, settings.tz)
    before = book.duties(limit=100_000)
    try:
        raw = text.encode(encoding, "surrogatepass")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    answer = client.post("/admin/roster.csv", data={"csrf": csrf}, files={"file": ("r.csv", raw)})
    assert answer.status_code < 500, answer.text[:300]
    if 'role="alert"' in answer.text or answer.status_code >= 400:
        assert book.duties(limit=100_000) == before


toml_docs = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            '[[unit]]\nid = "x"\nname = "X"\nparent = "nowhere"\n',
            "unit = 5\n",
            '[[unit]]\nid = 5\nname = "X"\n',
            '[[unit]]\nid = "10"\nname = "\\u0000"\n',
            '[[kiosk]]\nid = "K!"\ncounter = "c"\n',
            "[[unit]]\n" * 3,
        ]
    ),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


@FUZZ
@given(text=toml_docs)
def test_registry_uploads_never_fail_and_a_refused_one_changes_nothing(admin_page, store, text):
    client, _ = admin_page
    csrf = client.get("/admin/registry").text.split('name="csrf" value="')[1].split('"')[0]
    before = store.load_registry().to_toml()
    answer = client.post(
        "/admin/registry",
        data={"csrf": csrf},
        files={"file": ("r.toml", text.encode("utf-8", "surrogatepass"))},
    )
    assert answer.status_code < 500, answer.text[:300]
    if store.load_registry().to_toml() != before:
        # only a registry that passed every check may replace the old one, and it keeps the admin's unit
        assert "10" in store.load_registry().units


def test_the_example_registry_uploads_cleanly(admin_page, store):
    client, _ = admin_page
    csrf = client.get("/admin/registry").text.split('name="csrf" value="')[1].split('"')[0]
    answer = client.post("/admin/registry", data={"csrf": csrf}, files={"file": ("r.toml", REGISTRY.read_bytes())})
    assert answer.status_code == 200 and 'role="alert"' not in answer.text


@FUZZ
@given(
    ids=st.lists(st.one_of(texts, st.uuids().map(str)), max_size=5),
    comment=texts,
    reason=texts,
    unit=texts,
    counter=texts,
)
def test_the_review_queue_filters_and_the_bulk_review_never_fail(admin_page, ids, comment, reason, unit, counter):
    client, csrf = admin_page
    listing = client.get("/flagged", params={"reason": reason, "unit": unit, "counter": counter})
    assert listing.status_code in (200, 404, 422), listing.text[:300]
    answer = client.post("/flagged/review", data={"csrf": csrf, "comment": comment, "id": ids}, follow_redirects=False)
    assert answer.status_code in (303, 404, 422), answer.text[:300]
