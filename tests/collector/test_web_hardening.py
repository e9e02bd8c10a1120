"""Accounts and pages under attack: parallel guessing, floods of password checks, API tokens,
disabled users, admin scope, security headers — against a real HTTP server where it matters."""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import uvicorn

import collector.accounts as accounts_module
from collector.accounts import MAX_FAILED_LOGINS, PARALLEL_CHECKS, Accounts
from collector.registry import load_registry
from collector.web import create_app
from tests.collector.conftest import PASSWORD, REGISTRY
from tests.conftest import wait_for


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


ROOT = Path(__file__).resolve().parents[2]


class Server:
    """The app under uvicorn on a free port, in a thread: real sockets, real concurrency."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_for(lambda: self.server.started, 10)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def server(settings, store, users):
    running = Server(create_app(settings, store))
    yield running
    running.stop()


class CountingHasher:
    """The real argon2 hasher, counting the checks made and how many ran at once."""

    def __init__(self, hasher) -> None:  # type: ignore[no-untyped-def]
        self.hasher = hasher
        self.checks = 0
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def hash(self, password):  # type: ignore[no-untyped-def]
        return self.hasher.hash(password)

    def verify(self, password_hash, password):  # type: ignore[no-untyped-def]
        with self.lock:
            self.checks += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # a production-cost check takes this long or longer
            return self.hasher.verify(password_hash, password)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def counting(monkeypatch):
    hasher = CountingHasher(accounts_module._hasher)
    monkeypatch.setattr(accounts_module, "_hasher", hasher)
    return hasher


# Thirty requests queue for four password checks: on a loaded 2-core CI machine one waits longer
# than httpx's 5 s default. What these tests count is checks and answers, not time.
SLOW = 60.0


def test_thirty_parallel_wrong_passwords_get_five_guesses_and_lock_the_account(server, counting, store):
    def guess(n: int) -> int:
        return httpx.post(
            f"{server.url}/login", data={"username": "sapa", "password": f"wrong-{n:04d}-x"}, timeout=SLOW
        ).status_code

    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(guess, range(30)))
    assert set(codes) <= {401, 429}
    real_checks = counting.checks
    assert real_checks <= MAX_FAILED_LOGINS + 1  # the dummy check of a locked or unknown name aside
    answer = httpx.post(f"{server.url}/login", data={"username": "sapa", "password": PASSWORD}, timeout=SLOW)
    assert answer.status_code in (401, 429)  # locked: even the right password is refused
    assert "account_locked" in [row[2] for row in Accounts(store).audit_log()]


def test_forty_parallel_basic_requests_never_run_more_than_a_few_password_checks_at_once(server, counting):
    def probe(n: int) -> int:
        token = base64.b64encode(f"ghost{n}:whatever-password".encode()).decode()
        return httpx.get(
            f"{server.url}/api/v1/units", headers={"Authorization": f"Basic {token}"}, timeout=SLOW
        ).status_code

    with ThreadPoolExecutor(40) as pool:
        codes = list(pool.map(probe, range(40)))
    assert set(codes) <= {401, 429}
    assert counting.most <= PARALLEL_CHECKS
    assert counting.checks >= 1  # unknown names still cost a real check (no enumeration by timing)


def test_one_address_failing_over_and_over_is_slowed_down(server):
    codes = [
        httpx.post(f"{server.url}/login", data={"username": f"nobody{n}", "password": "x" * 12}).status_code
        for n in range(accounts_module.ADDRESS_LIMIT + 2)
    ]
    assert codes[0] == 401 and codes[-1] == 429


def cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def config(tmp_path, settings, store):
    path = tmp_path / "collector.toml"
    url = getattr(store, "url", None) or f"sqlite:///{store.path}"
    path.write_text(f'data_dir = "{settings.data_dir}"\nregistry = "{REGISTRY}"\n[store]\nurl = "{url}"\n')
    return path


def test_api_tokens_work_on_the_api_and_exports_and_stop_when_revoked(server, config, users):
    made = cli(config, "token", "add", "warehouse", "--user", "vanban")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("sat_") and "only time" in made.stderr
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/api/v1/units/10.085/summary", headers=bearer).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/units/10.082/summary", headers=bearer).status_code == 404  # Sa Pa
    export = httpx.get(f"{server.url}/units/10.085/table.csv?period=month&at=2026-10-15", headers=bearer)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    listed = cli(config, "token", "list")
    assert "warehouse" in listed.stdout and token not in listed.stdout
    assert cli(config, "token", "revoke", "1").returncode == 0
    assert httpx.get(f"{server.url}/api/v1/units/10.085/summary", headers=bearer).status_code == 401


def test_exports_accept_http_basic(server):
    answer = httpx.get(f"{server.url}/units/10/table.xlsx?period=month&at=2026-10-15", auth=("admin", PASSWORD))
    assert answer.status_code == 200
    from openpyxl import load_workbook

    assert load_workbook(io.BytesIO(answer.content)).active is not None
    browser = httpx.get(f"{server.url}/units/10/table.csv", headers={"Accept": "text/html"})
    assert browser.status_code == 303 and "/login" in browser.headers["location"]


def test_disabling_a_user_ends_sessions_and_refuses_basic_and_tokens(server, config, store):
    session = httpx.Client(base_url=server.url)
    assert session.post("/login", data={"username": "vanban", "password": PASSWORD}).status_code == 303
    assert session.get("/api/v1/units").status_code == 200
    token = cli(config, "token", "add", "script", "--user", "vanban").stdout.strip()
    result = cli(config, "user", "disable", "vanban")
    assert result.returncode == 0 and "1 session(s) ended" in result.stdout
    assert session.get("/api/v1/units").status_code == 401
    assert httpx.get(f"{server.url}/api/v1/units", auth=("vanban", PASSWORD)).status_code == 401
    assert httpx.get(f"{server.url}/api/v1/units", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    listed = cli(config, "user", "list").stdout
    assert "vanban" in listed and "disabled" in listed
    assert cli(config, "user", "enable", "vanban").returncode == 0
    assert httpx.get(f"{server.url}/api/v1/units", auth=("vanban", PASSWORD)).status_code == 200
    assert cli(config, "user", "passwd", "vanban", "--password-stdin", stdin="another long password\n").returncode == 0
    assert httpx.get(f"{server.url}/api/v1/units", auth=("vanban", "another long password")).status_code == 200


def test_unlock_lifts_the_lock(config, store, users):
    accounts = Accounts(store)
    for _ in range(MAX_FAILED_LOGINS + 1):
        with pytest.raises(accounts_module.AuthError):
            accounts.verify("sapa", "not the password")
    assert cli(config, "user", "unlock", "sapa").returncode == 0
    assert accounts.verify("sapa", PASSWORD) == ("viewer", "10.082")


def test_an_admin_of_a_district_sees_only_its_quarantine_and_audit_and_cannot_take_others_officers(
    client_for, store, settings, users
):
    from collector.officers import Officers

    registry = load_registry(REGISTRY)
    accounts = Accounts(store)
    accounts.add_user("vb-admin", PASSWORD, role="admin", unit="10.085", registry=registry)
    with store.transaction():
        store.add_quarantine("sat/v1/k/k-vb-q1/ratings", b"x", "not_json", "", "2026-11-22T00:00:00.000Z")
        store.add_quarantine("sat/v1/k/k-sp-q1/ratings", b"y", "not_json", "", "2026-11-22T00:00:00.000Z")
        store.add_quarantine("sat/v1/k/k-stranger-9/ratings", b"z", "unknown_kiosk", "", "2026-11-22T00:00:00.000Z")
    accounts.audit("sapa", "view_snapshot", "rating:x")
    accounts.audit("vanban", "view_snapshot", "rating:y")
    Officers(store, settings.tz).add_officer("o-sp-1", "Chị Mai", "10.082", registry)

    client = client_for("vb-admin")
    topics = [e["topic"] for e in client.get("/api/v1/quarantine").json()["entries"]]
    assert topics == ["sat/v1/k/k-vb-q1/ratings"]
    province = [e["topic"] for e in client_for("admin").get("/api/v1/quarantine").json()["entries"]]
    assert len(province) == 3
    page = client_for("vb-admin")
    page.auth = None
    page.post("/login", data={"username": "vb-admin", "password": PASSWORD})
    audit = page.get("/admin/audit").text
    assert "rating:y" in audit and "rating:x" not in audit
    csrf = page.get("/admin/roster").text.split('name="csrf" value="')[1].split('"')[0]
    page.post("/admin/officers", data={"csrf": csrf, "officer_id": "o-sp-1", "name": "Ai đó", "unit": "10.085"})
    assert Officers(store, settings.tz).officer("o-sp-1").unit == "10.082"  # not moved to Văn Bàn


def test_security_headers_have_no_inline_scripts_and_hsts_behind_https(settings, store, users):
    from fastapi.testclient import TestClient

    plain = TestClient(create_app(settings, store)).get("/login")
    policy = plain.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy
    assert "strict-transport-security" not in plain.headers
    secure = replace(settings, http=replace(settings.http, secure_cookies=True))
    answer = TestClient(create_app(secure, store)).get("/login")
    assert answer.headers["strict-transport-security"].startswith("max-age=")


def test_api_docs_are_served_from_the_collectors_own_files_under_the_same_script_policy(client_for):
    """/docs on an office LAN with no Internet: Swagger UI's files come from the collector, no
    CDN is named, and the page's scripts are files (the policy still forbids inline scripts)."""
    client = client_for("admin")
    page = client.get("/docs")
    assert page.status_code == 200 and 'id="swagger-ui"' in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline' ; script" not in policy
    for src in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/static/docs.js"):
        assert src in page.text
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 100, src
    assert "/openapi.json" in client.get("/static/docs.js").text
    assert client.get("/openapi.json").json()["paths"]
    assert client.get("/redoc").status_code == 404  # FastAPI's would load from a CDN: not offered


def test_the_api_declares_how_to_authenticate(client_for):
    """OpenAPI names the three ways in (Basic, a token, the session cookie) on every API operation,
    so Swagger UI's Authorize button and generated clients know them."""
    spec = client_for("admin").get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert {s.get("scheme") for s in schemes.values()} >= {"basic", "bearer"}
    for path, operations in spec["paths"].items():
        if path.startswith("/api/v1/"):
            for operation in operations.values():
                assert len(operation.get("security", [])) == 3, path
