"""Logins, sessions, lock-out and CSRF."""

import subprocess
import sys
from pathlib import Path

import pytest

from collector.accounts import MAX_FAILED_LOGINS, Accounts, AuthError
from tests.collector.conftest import PASSWORD, REGISTRY


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on a real PostgreSQL."""
    return any_store


ROOT = Path(__file__).resolve().parents[2]


def test_password_is_stored_as_argon2_hash(store, users):
    stored = store.conn.execute("SELECT password_hash FROM users WHERE username='admin'").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_bad_users_are_refused(store, users):
    accounts = Accounts(store)
    registry = store.load_registry()
    with pytest.raises(AuthError, match="at least"):
        accounts.add_user("short", "abc", role="viewer", unit="10", registry=registry)
    with pytest.raises(AuthError, match="role"):
        accounts.add_user("x1", PASSWORD, role="king", unit="10", registry=registry)
    with pytest.raises(AuthError, match="exists"):
        accounts.add_user("admin", PASSWORD, role="admin", unit="10", registry=registry)
    with pytest.raises(LookupError):
        accounts.add_user("x2", PASSWORD, role="viewer", unit="99", registry=registry)


def test_repeated_failures_lock_the_account(store, users, client_for):
    accounts = Accounts(store)
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(AuthError, match="wrong"):
            accounts.verify("sapa", "not the password")
    with pytest.raises(AuthError, match="locked"):
        accounts.verify("sapa", PASSWORD)  # even the right password, for 15 minutes
    client = client_for("sapa")
    assert client.get("/api/v1/units").status_code == 401
    assert ("sapa", "account_locked") in [(e[1], e[2]) for e in accounts.audit_log()]


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(client_for):
    client = client_for("vanban")
    client.auth = None
    response = client.post(
        "/login", data={"username": "vanban", "password": PASSWORD, "next": "/kiosks"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/kiosks"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/kiosks")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/kiosks", follow_redirects=False).headers["location"].startswith("/login")


def test_wrong_password_page_says_so_without_naming_the_reason(client_for):
    client = client_for("vanban")
    client.auth = None
    response = client.post("/login", data={"username": "nobody", "password": "whatever!!"})
    assert response.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in response.text


def test_forms_need_the_session_csrf_token(client_for, world_alert):
    client = client_for("admin")
    client.auth = None
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    response = client.post(f"/alerts/{world_alert}/ack", data={"comment": "done", "csrf": "guess"})
    assert response.status_code == 403


def test_open_redirect_after_login_is_refused(client_for):
    client = client_for("admin")
    client.auth = None
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "next": "//evil.example"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


@pytest.fixture
def world_alert(store, settings):
    from datetime import UTC, datetime

    from collector.alerts import AlertBook

    return (
        AlertBook(store, settings)
        .open_alert("silent", "vb-q1", "10.085", {"counter_name": "vb-q1", "minutes": 90}, datetime.now(UTC))
        .id
    )


def test_user_add_command_reads_the_password_from_stdin(tmp_path):
    conf = tmp_path / "collector.toml"
    conf.write_text(f'data_dir = "{tmp_path / "d"}"\n')

    def run(*args, stdin=""):
        return subprocess.run(
            [sys.executable, "-m", "collector.cli", *args, "--config", str(conf)],
            input=stdin,
            text=True,
            capture_output=True,
            cwd=ROOT,
            timeout=60,
        )

    assert run("registry", "load", str(REGISTRY)).returncode == 0
    ok = run(
        "user",
        "add",
        "chanh-thanh-tra",
        "--role",
        "inspector",
        "--unit",
        "10.085",
        "--password-stdin",
        stdin="a long enough secret\n",
    )
    assert ok.returncode == 0 and "inspector of unit 10.085" in ok.stdout
    short = run("user", "add", "other", "--role", "viewer", "--unit", "10", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 10" in short.stderr


def test_an_admin_changes_a_users_role_and_unit_from_the_page_and_sees_what_was_done(client_for, store):
    from collector.accounts import Accounts

    admin = client_for("admin")
    admin.auth = None
    admin.post("/login", data={"username": "admin", "password": PASSWORD})
    page = admin.get("/admin/users").text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert 'action="/admin/users/sapa/edit"' in page and 'action="/admin/users/admin/edit"' not in page
    done = admin.post("/admin/users/sapa/edit", data={"csrf": csrf, "role": "inspector", "unit": "10.085"})
    assert "✓ Đã đổi vai trò và đơn vị của sapa" in done.text
    user = Accounts(store).user("sapa")
    assert (user.role, user.unit) == ("inspector", "10.085")
    sapa = client_for("sapa")  # Basic: holds from the next request
    assert sapa.get("/api/v1/units/10.085/summary").status_code == 200
    assert sapa.get("/api/v1/units/10.082/summary").status_code == 404
    refused = admin.post("/admin/users/sapa/edit", data={"csrf": csrf, "role": "emperor", "unit": "10.085"})
    assert "Vai trò phải là một trong" in refused.text
    assert (
        "Không thể tự đổi"
        in admin.post("/admin/users/admin/edit", data={"csrf": csrf, "role": "viewer", "unit": "10"}).text
    )
    assert len(store.audit_for("user:sapa", ["user_edit"])) == 1
    assert (
        "✓ Đã đặt mật khẩu mới cho sapa"
        in admin.post("/admin/users/sapa/passwd", data={"csrf": csrf, "password": "a-new-password-1"}).text
    )


def test_a_district_admin_cannot_grant_a_unit_outside_their_own(client_for, store, users, settings):
    from collector.accounts import Accounts

    accounts = Accounts(store)
    accounts.add_user("vb-admin", PASSWORD, role="admin", unit="10.085", registry=store.load_registry())
    accounts.add_user("vb-clerk", PASSWORD, role="viewer", unit="10.085.02944", registry=store.load_registry())
    client = client_for("vb-admin")
    client.auth = None
    client.post("/login", data={"username": "vb-admin", "password": PASSWORD})
    csrf = client.get("/admin/users").text.split('name="csrf" value="')[1].split('"')[0]
    answer = client.post("/admin/users/vb-clerk/edit", data={"csrf": csrf, "role": "admin", "unit": "10"})
    assert "không thuộc quyền của bạn" in answer.text
    assert Accounts(store).user("vb-clerk").unit == "10.085.02944"
