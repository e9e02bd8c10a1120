"""Users, sessions, unit grants and the audit log.

Passwords are argon2 hashes. A session is a random token in an HttpOnly cookie; the store keeps
only its sha256, with a CSRF token for the forms of that session. Five wrong passwords in a row
lock an account for 15 minutes — counted atomically *before* the password is checked, so parallel
guesses get five tries in all, not five each. Failed logins are also counted per client address
(``ADDRESS_LIMIT`` in ``ADDRESS_WINDOW``), whichever account they aim at.

Checking a password costs argon2's memory (64 MiB by default): at most ``PARALLEL_CHECKS`` run at
once, and a name that does not exist costs the same check as one that does.

API tokens let scripts poll without a password: made by an admin, shown once, stored as a sha256
(they are long random strings: a fast hash is enough), acting as their user, revocable.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
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
MAX_PASSWORD_LENGTH = 1024
PARALLEL_CHECKS = 4
CHECK_WAIT_S = 20.0
ADDRESS_LIMIT = 20
ADDRESS_WINDOW = timedelta(minutes=10)
TOKEN_PREFIX = "sat_"

_hasher = PasswordHasher()
_checks = threading.BoundedSemaphore(PARALLEL_CHECKS)
_dummy_hash: str | None = None


class AuthError(CollectorError, PermissionError):
    """Wrong credentials, a locked account or a bad session."""


class TooMany(AuthError):
    """Too many failed logins from one address, or too many password checks at once: later."""


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    username: str
    created_at: str
    created_by: str
    last_used_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class User:
    username: str
    role: str
    unit: str
    locked_until: str | None
    disabled_at: str | None


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
        _check_password(password)
        with self.store.transaction():
            if self.conn.execute("SELECT 1 FROM users WHERE username=?", (username,)).fetchone():
                raise AuthError(f"user {username!r} exists already")
            self.conn.execute(
                "INSERT INTO users(username, password_hash, role, unit, created_at) VALUES (?,?,?,?,?)",
                (username, _hash(password), role, unit, _text(_now())),
            )

    def users(self) -> list[User]:
        return [
            User(*row)
            for row in self.conn.execute(
                "SELECT username, role, unit, locked_until, disabled_at FROM users ORDER BY username"
            )
        ]

    def user(self, username: str) -> User:
        for user in self.users():
            if user.username == username:
                return user
        raise AuthError(f"no user {username!r}")

    def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        self.user(username)
        with self.store.transaction():
            self.conn.execute(
                "UPDATE users SET password_hash=?, failed_logins=0, locked_until=NULL WHERE username=?",
                (_hash(password), username),
            )
            self.conn.execute("DELETE FROM sessions WHERE username=?", (username,))

    def disable(self, username: str) -> int:
        """No more logins, Basic auth or tokens for the user; their sessions end now. Returns how many."""
        self.user(username)
        with self.store.transaction():
            self.conn.execute(
                "UPDATE users SET disabled_at=? WHERE username=? AND disabled_at IS NULL", (_text(_now()), username)
            )
            ended = self.conn.execute("DELETE FROM sessions WHERE username=?", (username,)).rowcount
        return int(ended or 0)

    def enable(self, username: str) -> None:
        self.user(username)
        with self.store.transaction():
            self.conn.execute("UPDATE users SET disabled_at=NULL WHERE username=?", (username,))

    def unlock(self, username: str) -> None:
        self.user(username)
        with self.store.transaction():
            self.conn.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE username=?", (username,))

    # --- checking passwords ----------------------------------------------------------

    def verify(self, username: str, password: str, *, address: str = "") -> tuple[str, str]:
        """(role, unit) when the password is right; AuthError otherwise (and counts the failure)."""
        if address and self.failures_from(address) >= ADDRESS_LIMIT:
            raise TooMany("too many failed logins from this address; try again in a few minutes")
        now = _now()
        with self.store.transaction():
            # Count the attempt first, atomically: parallel guesses cannot all see the old count.
            row = self.conn.execute(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE username=?"
                " AND (locked_until IS NULL OR locked_until <= ?)"
                " RETURNING password_hash, role, unit, failed_logins, disabled_at",
                (username, _text(now)),
            ).fetchone()
            locked = (
                row is None
                and self.conn.execute(
                    "SELECT 1 FROM users WHERE username=? AND locked_until > ?", (username, _text(now))
                ).fetchone()
            )
            if row is not None and row[3] > MAX_FAILED_LOGINS:
                # Attempts beyond the limit that raced past the lock: lock now, check nothing.
                self.conn.execute(
                    "UPDATE users SET locked_until=?, failed_logins=0 WHERE username=?",
                    (_text(now + LOCKOUT), username),
                )
                locked, row = True, None
        if locked:
            self._failed(address, username)
            raise AuthError("account locked after repeated failures; try again later")
        if row is None:
            _verify(_dummy(), password)  # same cost as a real check: do not reveal which names exist
            self._failed(address, username)
            raise AuthError("wrong user name or password")
        password_hash, role, unit, attempts, disabled_at = row
        if not _verify(password_hash, password):
            if attempts >= MAX_FAILED_LOGINS:
                with self.store.transaction():
                    self.conn.execute(
                        "UPDATE users SET locked_until=?, failed_logins=0 WHERE username=?",
                        (_text(now + LOCKOUT), username),
                    )
                self.audit(username, "account_locked", username, f"{MAX_FAILED_LOGINS} failed logins")
            self._failed(address, username)
            raise AuthError("wrong user name or password")
        with self.store.transaction():
            self.conn.execute("UPDATE users SET failed_logins=0, locked_until=NULL WHERE username=?", (username,))
        if disabled_at:
            raise AuthError("this account is disabled; ask an administrator")
        return role, unit

    def failures_from(self, address: str) -> int:
        since = _text(_now() - ADDRESS_WINDOW)
        row = self.conn.execute(
            "SELECT COUNT(*) FROM login_failures WHERE address=? AND at > ?", (address, since)
        ).fetchone()
        return int(row[0])

    def _failed(self, address: str, username: str) -> None:
        if not address:
            return
        now = _now()
        with self.store.transaction():
            self.conn.execute("DELETE FROM login_failures WHERE at < ?", (_text(now - ADDRESS_WINDOW),))
            self.conn.execute("INSERT INTO login_failures VALUES (?,?)", (address, _text(now)))

    # --- API tokens --------------------------------------------------------------------

    def add_token(self, name: str, username: str, *, by: str) -> str:
        """A new token for ``username``'s scripts; the only time the token itself is seen."""
        if not name.strip() or len(name) > 100:
            raise AuthError("give the token a short name (what uses it)")
        self.user(username)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.transaction():
            self.conn.execute(
                "INSERT INTO api_tokens(token_hash, name, username, created_at, created_by) VALUES (?,?,?,?,?)",
                (_digest(token), name.strip(), username, _text(_now()), by),
            )
        return token

    def tokens(self) -> list[ApiToken]:
        return [
            ApiToken(*row)
            for row in self.conn.execute(
                "SELECT id, name, username, created_at, created_by, last_used_at, revoked_at"
                " FROM api_tokens ORDER BY id"
            )
        ]

    def revoke_token(self, token_id: int) -> None:
        with self.store.transaction():
            changed = self.conn.execute(
                "UPDATE api_tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (_text(_now()), token_id)
            ).rowcount
        if not changed:
            raise AuthError(f"no active token {token_id}")

    def token_user(self, token: str) -> str | None:
        """The user a live token acts as (None: unknown, revoked, or its user disabled)."""
        row = self.conn.execute(
            "SELECT t.id, u.username FROM api_tokens t JOIN users u ON u.username = t.username"
            " WHERE t.token_hash=? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
            (_digest(token),),
        ).fetchone()
        if row is None:
            return None
        with self.store.transaction():
            self.conn.execute("UPDATE api_tokens SET last_used_at=? WHERE id=?", (_text(_now()), row[0]))
        return str(row[1])

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
        row = self.conn.execute(
            "SELECT role, unit FROM users WHERE username=? AND disabled_at IS NULL", (username,)
        ).fetchone()
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
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AuthError(
            f"password must have at least {MIN_PASSWORD_LENGTH} and at most {MAX_PASSWORD_LENGTH} characters"
        )


def _hash(password: str) -> str:
    with _bounded():
        return _hasher.hash(password.encode("utf-8", "surrogatepass"))


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    with _bounded():
        try:
            return bool(_hasher.verify(password_hash, password.encode("utf-8", "surrogatepass")))
        except (VerificationError, InvalidHashError):
            return False


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hash(secrets.token_urlsafe(16))
    return _dummy_hash


class _bounded:  # noqa: N801 - used as a context manager, like a lock
    """At most PARALLEL_CHECKS argon2 computations at once; a request waits, then gives up."""

    def __enter__(self) -> None:
        if not _checks.acquire(timeout=CHECK_WAIT_S):
            raise TooMany("the server is busy checking passwords; try again in a moment")

    def __exit__(self, *exc: object) -> None:
        _checks.release()
