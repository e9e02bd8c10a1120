"""Users, sessions, unit grants and the audit log.

Passwords are argon2 hashes. A session is a random token in an HttpOnly cookie; the store keeps
only its sha256, with a CSRF token for the forms of that session. Five wrong passwords in a row
lock an account for 15 minutes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from collector.errors import CollectorError
from collector.registry import Registry
from collector.store import SqliteStore
from kiosk import wire

ROLES = ("admin", "inspector", "viewer")
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=10)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()


class AuthError(CollectorError, PermissionError):
    """Wrong credentials, a locked account or a bad session."""


@dataclass(frozen=True)
class Principal:
    """Who is asking, and what they may see: the granted unit and everything below it."""

    username: str
    role: str
    unit: str
    units: frozenset[str]
    csrf: str = ""

    def can(self, need: str) -> bool:
        """``need`` is viewer < inspector < admin."""
        return ROLES.index(self.role) <= ROLES.index(need)

    def sees_unit(self, unit_id: str) -> bool:
        return unit_id in self.units

    def sees_counter(self, registry: Registry, counter_id: str) -> bool:
        counter = registry.counters.get(counter_id)
        return counter is not None and counter.unit in self.units

    def sees_kiosk(self, registry: Registry, kiosk_id: str) -> bool:
        kiosk = registry.kiosks.get(kiosk_id)
        return kiosk is not None and self.sees_counter(registry, kiosk.counter)


def _now() -> datetime:
    return datetime.now(UTC)


def _text(moment: datetime) -> str:
    return wire.format_time(moment)


class Accounts:
    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.conn = store.conn

    # --- users -----------------------------------------------------------------

    def add_user(self, username: str, password: str, *, role: str, unit: str, registry: Registry) -> None:
        if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
            raise AuthError(f"user name {username!r}: letters, digits, '.', '-', '_' only")
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        registry.unit(unit)  # NotFound for an unknown unit
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        with self.store.transaction():
            if self.conn.execute("SELECT 1 FROM users WHERE username=?", (username,)).fetchone():
                raise AuthError(f"user {username!r} exists already")
            self.conn.execute(
                "INSERT INTO users(username, password_hash, role, unit, created_at) VALUES (?,?,?,?,?)",
                (username, _hasher.hash(password), role, unit, _text(_now())),
            )

    def users(self) -> list[tuple[str, str, str, str | None]]:
        return list(self.conn.execute("SELECT username, role, unit, locked_until FROM users ORDER BY username"))

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
        with self.store.transaction():
            self.conn.execute(
                "UPDATE users SET password_hash=?, failed_logins=0, locked_until=NULL WHERE username=?",
                (_hasher.hash(password), username),
            )

    # --- checking passwords ----------------------------------------------------------

    def verify(self, username: str, password: str) -> tuple[str, str]:
        """(role, unit) when the password is right; AuthError otherwise (and counts the failure)."""
        row = self.conn.execute(
            "SELECT password_hash, role, unit, failed_logins, locked_until FROM users WHERE username=?",
            (username,),
        ).fetchone()
        if row is None:
            _hasher.hash(password)  # same time as a real check: do not reveal which names exist
            raise AuthError("wrong user name or password")
        password_hash, role, unit, failed, locked_until = row
        if locked_until and wire.parse_time(locked_until) > _now():
            raise AuthError("account locked after repeated failures; try again later")
        try:
            _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            failed += 1
            lock = _text(_now() + LOCKOUT) if failed >= MAX_FAILED_LOGINS else None
            with self.store.transaction():
                self.conn.execute(
                    "UPDATE users SET failed_logins=?, locked_until=? WHERE username=?",
                    (0 if lock else failed, lock, username),
                )
            if lock:
                self.audit(username, "account_locked", username, f"{MAX_FAILED_LOGINS} failed logins")
            raise AuthError("wrong user name or password") from None
        if failed or locked_until:
            with self.store.transaction():
                self.conn.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE username=?", (username,))
        return role, unit

    # --- sessions ----------------------------------------------------------------

    def open_session(self, username: str) -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        with self.store.transaction():
            self.conn.execute("DELETE FROM sessions WHERE expires_at < ?", (_text(now),))
            self.conn.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?)",
                (
                    _digest(token),
                    username,
                    secrets.token_urlsafe(24),
                    _text(now),
                    _text(now + SESSION_LIFETIME),
                ),
            )
        return token

    def session(self, token: str) -> tuple[str, str] | None:
        """(username, csrf token) of a live session."""
        row = self.conn.execute(
            "SELECT username, csrf, expires_at FROM sessions WHERE token_hash=?", (_digest(token),)
        ).fetchone()
        if row is None or wire.parse_time(row[2]) < _now():
            return None
        return row[0], row[1]

    def close_session(self, token: str) -> None:
        with self.store.transaction():
            self.conn.execute("DELETE FROM sessions WHERE token_hash=?", (_digest(token),))

    def principal(self, username: str, registry: Registry, csrf: str = "") -> Principal | None:
        row = self.conn.execute("SELECT role, unit FROM users WHERE username=?", (username,)).fetchone()
        if row is None or row[1] not in registry.units:
            return None
        return Principal(username, row[0], row[1], frozenset(registry.subtree(row[1])), csrf)

    # --- audit -------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str, detail: str = "") -> None:
        with self.store.transaction():
            self.conn.execute(
                "INSERT INTO audit(at, username, action, target, detail) VALUES (?,?,?,?,?)",
                (_text(_now()), username, action, target, detail),
            )

    def audit_log(self, limit: int = 500) -> list[tuple[str, str, str, str, str]]:
        return list(
            self.conn.execute(
                "SELECT at, username, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            )
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
