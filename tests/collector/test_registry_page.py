"""Editing the registry in the web UI: download, upload, validation, who may."""

import html

import pytest

from collector.accounts import Accounts
from collector.registry import load_registry, registry_from_dict
from tests.collector.conftest import PASSWORD, REGISTRY


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


@pytest.fixture
def admin(client_for, settings):
    settings.registry.parent.mkdir(parents=True, exist_ok=True)
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    return client


def csrf(client):
    return client.get("/admin/registry").text.split('name="csrf" value="')[1].split('"')[0]


def test_download_round_trips(admin):
    text = admin.get("/admin/registry.toml").content.decode()
    import tomllib

    def canonical(registry):
        return {kind: sorted(map(str, items)) for kind, items in registry.to_dict().items()}

    assert canonical(registry_from_dict(tomllib.loads(text))) == canonical(load_registry(REGISTRY))


def test_upload_replaces_store_and_file(admin, store, tmp_path, settings, monkeypatch):
    registry_file = tmp_path / "registry.toml"
    registry_file.write_text(REGISTRY.read_text())
    monkeypatch.setattr(
        admin.app.state.web, "settings", type(settings)(**{**settings.__dict__, "registry": registry_file})
    )
    new = REGISTRY.read_text() + '\n[[counter]]\nid = "vb-q3"\nunit = "10.085"\nname = "Quầy 3 — Lao động"\n'
    response = admin.post("/admin/registry", data={"csrf": csrf(admin)}, files={"file": ("r.toml", new.encode())})
    assert response.status_code == 200 and "✓" in response.text
    assert "vb-q3" in store.load_registry().counters
    assert load_registry(registry_file).counters["vb-q3"].name == "Quầy 3 — Lao động"
    assert ("admin", "replace_registry") in [(e[1], e[2]) for e in Accounts(store).audit_log()]


def test_bad_upload_is_refused_and_changes_nothing(admin, store):
    before = sorted(map(str, store.load_registry().to_dict()["unit"]))
    bad = b'[[unit]]\nid = "a"\nname = "A"\nparent = "nowhere"\n'
    response = admin.post("/admin/registry", data={"csrf": csrf(admin)}, files={"file": ("r.toml", bad)})
    assert "Đơn vị a: đơn vị cấp trên 'nowhere' không có" in html.unescape(response.text)  # the page's language
    assert sorted(map(str, store.load_registry().to_dict()["unit"])) == before
    response = admin.post("/admin/registry", data={"csrf": csrf(admin)}, files={"file": ("r.toml", b"not = [toml")})
    assert 'role="alert"' in response.text
    assert sorted(map(str, store.load_registry().to_dict()["unit"])) == before


def test_only_an_admin_of_the_top_unit_edits_the_registry(client_for, store):
    Accounts(store).add_user("vb-admin", PASSWORD, role="admin", unit="10.085", registry=store.load_registry())
    client = client_for("vb-admin")
    client.auth = None
    client.post("/login", data={"username": "vb-admin", "password": PASSWORD})
    assert client.get("/admin/registry").status_code == 403
    assert client.get("/admin/registry.toml").status_code == 403
