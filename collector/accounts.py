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

from collector.anystore import Store
from collector.errors import CollectorError
from collector.registry import Registry
from kiosk import wire

ROLES = ("admin", "inspector", "viewer")
MAX_FAILED_LOGINS = 5
MAX_USERNAME_LENGTH = 64
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
    """Users, passwords, lock-outs, sessions, API tokens and the audit trail, on either store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- users -----------------------------------------------------------------

    def add_user(self, username: str, password: str, *, role: str, unit: str, registry: Registry) -> None:
        if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
            raise AuthError(f"user name {username[:80]!r}: letters, digits, '.', '-', '_' only")
        if len(username) > MAX_USERNAME_LENGTH:
            raise AuthError(f"a user name is at most {MAX_USERNAME_LENGTH} characters")
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        registry.unit(unit)  # NotFound for an unknown unit
        _check_password(password)
        if not self.store.user_insert(username, _hash(password), role, unit, _text(_now())):
            raise AuthError(f"user {username!r} exists already")

    def users(self) -> list[User]:
        return [User(*row) for row in self.store.users()]

    def user(self, username: str) -> User:
        for user in self.users():
            if user.username == username:
                return user
        raise AuthError(f"no user {username!r}")

    def set_password(self, username: str, password: str) -> None:
        _check_password(password)
        self.user(username)
        self.store.user_set_password(username, _hash(password))

    def disable(self, username: str) -> int:
        """No more logins, Basic auth or tokens for the user; their sessions end now. Returns how many."""
        self.user(username)
        return self.store.user_disable(username, _text(_now()))

    def set_grant(self, username: str, *, role: str, unit: str, registry: Registry) -> None:
        """Change what a user may do (role) and over which units (unit and everything below it);
        it holds from their next request."""
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        registry.unit(unit)  # NotFound for an unknown unit
        self.user(username)
        self.store.user_set_grant(username, role, unit)

    def enable(self, username: str) -> None:
        self.user(username)
        self.store.user_enable(username)

    def unlock(self, username: str) -> None:
        self.user(username)
        self.store.user_unlock(username)

    # --- checking passwords ----------------------------------------------------------

    def verify(self, username: str, password: str, *, address: str = "") -> tuple[str, str]:
        """(role, unit) when the password is right; AuthError otherwise (and counts the failure)."""
        if address and self.failures_from(address) >= ADDRESS_LIMIT:
            raise TooMany("too many failed logins from this address; try again in a few minutes")
        now = _now()
        row, locked = self.store.login_attempt(
            username, _text(now), max_failed=MAX_FAILED_LOGINS, lock_until=_text(now + LOCKOUT)
        )
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
                self.store.user_lock(username, _text(now + LOCKOUT))
                self.audit(username, "account_locked", username, f"{MAX_FAILED_LOGINS} failed logins")
            self._failed(address, username)
            raise AuthError("wrong user name or password")
        self.store.user_unlock(username)
        if disabled_at:
            raise AuthError("this account is disabled; ask an administrator")
        return role, unit

    def failures_from(self, address: str) -> int:
        return self.store.login_failures_since(address, _text(_now() - ADDRESS_WINDOW))

    def _failed(self, address: str, username: str) -> None:
        if not address:
            return
        now = _now()
        self.store.login_failure_add(address, _text(now), forget_before=_text(now - ADDRESS_WINDOW))

    # --- API tokens --------------------------------------------------------------------

    def add_token(self, name: str, username: str, *, by: str) -> str:
        """A new token for ``username``'s scripts; the only time the token itself is seen."""
        if not name.strip() or len(name) > 100:
            raise AuthError("give the token a short name (what uses it)")
        self.user(username)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.token_insert(_digest(token), name.strip(), username, _text(_now()), by)
        return token

    def tokens(self) -> list[ApiToken]:
        return [ApiToken(*row) for row in self.store.tokens()]

    def revoke_token(self, token_id: int) -> None:
        if not self.store.token_revoke(token_id, _text(_now())):
            raise AuthError(f"no active token {token_id}")

    def token_user(self, token: str) -> str | None:
        """The user a live token acts as (None: unknown, revoked, or its user disabled)."""
        return self.store.token_use(_digest(token), _text(_now()))

    # --- sessions ----------------------------------------------------------------

    def open_session(self, username: str) -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        self.store.session_open(
            _digest(token), username, secrets.token_urlsafe(24), _text(now), _text(now + SESSION_LIFETIME)
        )
        return token

    def session(self, token: str) -> tuple[str, str] | None:
        """(username, csrf token) of a live session."""
        row = self.store.session_get(_digest(token))
        if row is None or wire.parse_time(row[2]) < _now():
            return None
        return row[0], row[1]

    def close_session(self, token: str) -> None:
        self.store.session_close(_digest(token))

    def principal(self, username: str, registry: Registry, csrf: str = "") -> Principal | None:
        row = self.store.user_role_unit(username)
        if row is None or row[1] not in registry.units:
            return None
        return Principal(username, row[0], row[1], frozenset(registry.subtree(row[1])), csrf)

    # --- audit -------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str, detail: str = "") -> None:
        self.store.audit_add(_text(_now()), username, action, target, detail)

    def audit_log(self, limit: int = 500) -> list[tuple[str, str, str, str, str]]:
        return self.store.audit_rows(limit)


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
