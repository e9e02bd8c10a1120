"""The store's ports for people and their work — accounts and sessions, API tokens, the audit
trail, officers and the duty roster, alert rules and alerts, reviews — written once in the SQL
both back-ends speak (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``, ``CASE``) and mixed into
:class:`~collector.store.SqliteStore` and :class:`~collector.pgstore.PostgresStore`.

Each back-end supplies four primitives (``_rows``, ``_row``, ``_run``, ``transaction``); nothing
outside the store modules writes SQL or sees a connection. A method that runs several statements
opens its own transaction; a method of one statement does not, so a caller can put several in one
transaction of its own (a roster import is all rows or none).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collector.registry import Counter, KioskEntry, Registry, Unit
from kiosk import wire

UserRow = tuple[str, str, str, str | None, str | None]  # username, role, unit, locked_until, disabled_at
TokenRow = tuple[int, str, str, str, str, str | None, str | None]
AlertRow = tuple[int, str, str, str, str, str, str | None, str | None, str | None]
PICTURE_IN_DB = "db:"
_ALERT_COLUMNS = "id, kind, target, unit, opened_at, detail, acked_by, acked_at, ack_comment"


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    topic: str
    payload: bytes
    received_at: str
    reason: str
    detail: str
    replayed_at: str | None
    replay_outcome: str | None


@dataclass(frozen=True)
class InstallSeq:
    kiosk: str
    install: str
    count: int
    min_seq: int
    max_seq: int
    last_received_at: str
    quarantined: int = 0  # seqs below max_seq that are in quarantine, not missing

    @property
    def possibly_missing(self) -> int:
        return max(0, (self.max_seq - min(self.min_seq, 1) + 1) - self.count - self.quarantined)


@dataclass(frozen=True)
class Assignments:
    """Which counters each kiosk is or was assigned to, from when until when, and when it was
    first enrolled."""

    first_enrolled: dict[str, str | None]  # None: enrolled before the history was kept
    # kiosk -> (counter, since, until) of each assignment; None: not known (before the history) or
    # still going on
    spans: dict[str, tuple[tuple[str, datetime | None, datetime | None], ...]] = field(default_factory=dict)

    @property
    def counters(self) -> dict[str, frozenset[str]]:
        """Every counter each kiosk is or was assigned to."""
        return {kiosk: frozenset(c for c, _, _ in spans) for kiosk, spans in self.spans.items()}

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> Assignments:
        """From (kiosk, counter, since, until) rows of the ``assignments`` table."""
        first: dict[str, str | None] = {}
        unknown: set[str] = set()
        spans: dict[str, list[tuple[str, datetime | None, datetime | None]]] = defaultdict(list)
        for kiosk, counter, since, until in rows:
            spans[kiosk].append(
                (counter, wire.parse_time(since) if since else None, wire.parse_time(until) if until else None)
            )
            if since is None:
                unknown.add(kiosk)
            elif kiosk not in first or since < (first[kiosk] or since):
                first[kiosk] = since
        for kiosk in unknown:
            first[kiosk] = None  # enrolled before the history was kept: no lower bound on time
        return cls(first, {k: tuple(v) for k, v in spans.items()})

    def held(self, kiosk: str, counter: str, pressed: datetime, *, slack: timedelta) -> bool:
        """Whether the kiosk was at ``counter`` when it says it was pressed: an assignment to it
        that had begun (``slack`` before, for clocks) and had not ended (``slack`` after)."""
        for held_counter, since, until in self.spans.get(kiosk, ()):
            if held_counter != counter:
                continue
            if (until is None or pressed < until + slack) and (since is None or pressed >= since - slack):
                return True
        return False


@dataclass(frozen=True)
class MailSent:
    unit: str
    month: str  # YYYY-MM
    sent_at: str
    recipients: str


# A quarantined payload is kept whole up to this size (the biggest valid message, a picture, with
# room to spare); beyond it, the head is kept with its length and sha256 in the detail.
MAX_QUARANTINE_PAYLOAD = 2 * 1024 * 1024


def safe_text(text: str, longest: int) -> str:
    """Text any store can hold: lone surrogates escaped, length bounded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:longest]


def bounded_quarantine(payload: bytes, detail: str) -> tuple[bytes, str]:
    detail = safe_text(detail, 1000)
    if len(payload) <= MAX_QUARANTINE_PAYLOAD:
        return payload, detail
    digest = hashlib.sha256(payload).hexdigest()
    note = f" [payload cut to {MAX_QUARANTINE_PAYLOAD} of {len(payload)} bytes, sha256 {digest}]"
    return payload[:MAX_QUARANTINE_PAYLOAD], detail[: 1000 - len(note)] + note


class SharedSql:
    # --- what each back-end supplies ---------------------------------------------------

    def transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _row(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._rows(sql, args)
        return rows[0] if rows else None

    def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement; how many rows it changed."""
        raise NotImplementedError

    # From each duty to the ratings in it, the way each back-end's planner keeps: SQLite keeps the
    # order of a CROSS JOIN; PostgreSQL reorders joins (then each rating searches every duty begun
    # before it: 0.5 s a counter for a year) unless the ratings are a LATERAL it cannot flatten.
    # ``{rating}``: conditions on the ratings (r), ``{duty}``: on the duties (d); the ratings'
    # arguments come first.
    _DUTY_RATINGS = (
        " FROM roster d CROSS JOIN ratings r WHERE r.counter = d.counter AND r.pressed_at >= d.start_at"
        " AND r.pressed_at < d.end_at AND {rating} AND {duty}"
    )

    # SQLite takes a row lock by its one writer; PostgreSQL needs it said (read, then write).
    _FOR_UPDATE = ""

    # --- registry ---------------------------------------------------------------------

    def load_registry(self) -> Registry:
        return Registry.build(
            [Unit(*row) for row in self._rows("SELECT id, name, level, parent FROM units")],
            [Counter(*row) for row in self._rows("SELECT id, unit, name FROM counters")],
            [KioskEntry(*row) for row in self._rows("SELECT id, counter FROM kiosks")],
        )

    def assignments(self) -> Assignments:
        return Assignments.from_rows(self._rows("SELECT kiosk, counter, since, until FROM assignments"))

    # --- ratings ----------------------------------------------------------------------

    def rating_count(self) -> int:
        row = self._row("SELECT COUNT(*) FROM ratings")
        return int(row[0]) if row else 0

    def rating_kiosks(self, ids: Sequence[str]) -> dict[str, str]:
        """The kiosk each of these stored ratings came from (ids not stored are left out)."""
        out: dict[str, str] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                (str(i), str(k)) for i, k in self._rows(f"SELECT id, kiosk FROM ratings WHERE id IN ({marks})", chunk)
            )
        return out

    def installs(self) -> list[InstallSeq]:
        return [
            InstallSeq(*row)
            for row in self._rows(
                "SELECT i.kiosk, i.install, i.count, i.min_seq, i.max_seq, i.last_received_at,"
                " (SELECT COUNT(DISTINCT q.seq) FROM quarantine q WHERE q.kiosk = i.kiosk AND q.install = i.install"
                "   AND q.install IS NOT NULL AND q.replayed_at IS NULL AND q.seq BETWEEN 1 AND i.max_seq)"
                " FROM installs i ORDER BY i.kiosk"
            )
        ]

    # --- pictures ---------------------------------------------------------------------

    def snapshot_expected(self, rating_id: str) -> tuple[str, str | None, int | None] | None:
        """(kiosk, sha256, bytes) the rating announced, or None when there is no such rating."""
        row = self._row("SELECT kiosk, snapshot_sha256, snapshot_bytes FROM ratings WHERE id=?", (rating_id,))
        return None if row is None else (row[0], row[1], row[2])

    def has_snapshot(self, rating_id: str) -> bool:
        return self._row("SELECT 1 FROM snapshots WHERE rating_id=?", (rating_id,)) is not None

    def snapshot_path(self, rating_id: str) -> str | None:
        row = self._row("SELECT path FROM snapshots WHERE rating_id=?", (rating_id,))
        return None if row is None else str(row[0])

    def add_snapshot(self, rating_id: str, sha256: str, path: str, nbytes: int, received_at: str) -> None:
        self._run(
            "INSERT INTO snapshots VALUES (?,?,?,?,?) ON CONFLICT (rating_id) DO NOTHING",
            (rating_id, sha256, path, nbytes, received_at),
        )

    # --- quarantine -------------------------------------------------------------------

    def add_quarantine(
        self,
        topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        received_at: str,
        *,
        kiosk: str | None = None,
        install: str | None = None,
        seq: int | None = None,
    ) -> int:
        payload, detail = bounded_quarantine(bytes(payload), detail)
        row = self._row(
            "INSERT INTO quarantine(topic, payload, received_at, reason, detail, kiosk, install, seq, bytes)"
            " VALUES (?,?,?,?,?,?,?,?,?) RETURNING id",
            (
                safe_text(topic, 1024).replace("\x00", "\\x00"),  # PostgreSQL text holds no NUL
                payload,
                received_at,
                safe_text(reason, 64),
                detail.replace("\x00", "\\x00"),
                kiosk,
                install,
                seq,
                len(payload),
            ),
        )
        return int(row[0]) if row else 0

    def quarantined(
        self, *, include_replayed: bool = False, limit: int = 1000, after_id: int = 0
    ) -> list[QuarantineEntry]:
        """A page of entries in id order; pass the last id seen as ``after_id`` for the next."""
        where = "id > ?" if include_replayed else "id > ? AND replayed_at IS NULL"
        return [
            QuarantineEntry(row[0], row[1], bytes(row[2]), *row[3:])
            for row in self._rows(
                "SELECT id, topic, payload, received_at, reason, detail, replayed_at, replay_outcome"
                f" FROM quarantine WHERE {where} ORDER BY id LIMIT ?",
                (after_id, limit),
            )
        ]

    def mark_replayed(self, entry_id: int, outcome: str, at: str) -> None:
        self._run("UPDATE quarantine SET replayed_at=?, replay_outcome=? WHERE id=?", (at, outcome, entry_id))

    # --- kiosk health -----------------------------------------------------------------

    def record_status(self, kiosk: str, doc: dict[str, Any], received_at: str) -> None:
        row = self._row(f"SELECT state, doc FROM kiosk_status WHERE kiosk=?{self._FOR_UPDATE}", (kiosk,))
        state = str(doc["state"])
        if row is None or row[0] != state:
            self._run(
                "INSERT INTO kiosk_transitions(kiosk, state, at) VALUES (?,?,?)",
                (kiosk, state, doc.get("at") or received_at),
            )
        if row is not None:
            old = json.loads(row[1])
            if state == "offline":
                # An offline will carries no details: keep the last online status's details beside it.
                doc = {**old, **doc}
            elif old.get("selftest") and not doc.get("selftest"):
                doc = {**doc, "selftest": old["selftest"]}  # "installed and tested at …" stays
        self._run(
            "INSERT INTO kiosk_status VALUES (?,?,?,?) ON CONFLICT (kiosk) DO UPDATE SET"
            " state=excluded.state, doc=excluded.doc, received_at=excluded.received_at",
            (kiosk, state, json.dumps(doc, ensure_ascii=True), received_at),  # a lone surrogate fits too
        )

    def online_since(self) -> dict[str, str]:
        """Each kiosk's latest change to online (its time), for kiosks that ever were."""
        return {
            str(k): str(a)
            for k, a in self._rows("SELECT kiosk, MAX(at) FROM kiosk_transitions WHERE state = 'online' GROUP BY kiosk")
        }

    def transitions(self, kiosk: str) -> list[tuple[str, str]]:
        return [
            (s, a) for s, a in self._rows("SELECT state, at FROM kiosk_transitions WHERE kiosk=? ORDER BY id", (kiosk,))
        ]

    # --- monthly mail -----------------------------------------------------------------

    def mails_sent(self, units: Sequence[str] | None = None) -> list[MailSent]:
        """Monthly reports sent (to these units), oldest month first."""
        wanted = None if units is None else set(units)
        return [
            MailSent(*row)
            for row in self._rows("SELECT unit, month, sent_at, recipients FROM mail_log ORDER BY month, unit")
            if wanted is None or row[0] in wanted
        ]

    def record_mail(self, unit: str, month: str, sent_at: str, recipients: str) -> None:
        self._run(
            "INSERT INTO mail_log VALUES (?,?,?,?) ON CONFLICT (unit, month) DO UPDATE SET"
            " sent_at=excluded.sent_at, recipients=excluded.recipients",
            (unit, month, sent_at, recipients),
        )

    # --- ratings ----------------------------------------------------------------------

    def add_ratings(
        self,
        kiosk: str,
        ratings: Sequence[wire.Rating],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]:
        """Store the ratings of one kiosk not stored yet; returns (new ids, duplicate ids).
        Call inside transaction()."""
        return self.add_rating_groups(((kiosk, ratings),), unit_of=unit_of, received_at=received_at, tz=tz)

    def add_rating_groups(
        self,
        groups: Sequence[tuple[str, Sequence[wire.Rating]]],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]:
        """Store the ratings of several kiosks (kiosk, ratings) at once: one insert and one upsert
        per counter, day, score and flag for all of them. Returns (new ids, duplicate ids); an id
        sent twice counts once as new (its first copy) and then as a duplicate."""
        raise NotImplementedError

    # --- users ------------------------------------------------------------------------

    def user_insert(self, username: str, password_hash: str, role: str, unit: str, at: str) -> bool:
        """Add a user; False when the name is taken."""
        with self.transaction():
            if self._row("SELECT 1 FROM users WHERE username=?", (username,)):
                return False
            self._run(
                "INSERT INTO users(username, password_hash, role, unit, created_at) VALUES (?,?,?,?,?)",
                (username, password_hash, role, unit, at),
            )
        return True

    def users(self) -> list[UserRow]:
        return [
            (str(u), str(r), str(n), lk, d)
            for u, r, n, lk, d in self._rows(
                "SELECT username, role, unit, locked_until, disabled_at FROM users ORDER BY username"
            )
        ]

    def user_set_password(self, username: str, password_hash: str) -> None:
        """A new password; the lock-out is lifted and every session of the user ends."""
        with self.transaction():
            self._run(
                "UPDATE users SET password_hash=?, failed_logins=0, locked_until=NULL WHERE username=?",
                (password_hash, username),
            )
            self._run("DELETE FROM sessions WHERE username=?", (username,))

    def user_disable(self, username: str, at: str) -> int:
        """Disable the user and end their sessions; how many sessions ended."""
        with self.transaction():
            self._run("UPDATE users SET disabled_at=? WHERE username=? AND disabled_at IS NULL", (at, username))
            return self._run("DELETE FROM sessions WHERE username=?", (username,))

    def user_set_grant(self, username: str, role: str, unit: str) -> None:
        self._run("UPDATE users SET role=?, unit=? WHERE username=?", (role, unit, username))

    def user_enable(self, username: str) -> None:
        self._run("UPDATE users SET disabled_at=NULL WHERE username=?", (username,))

    def user_unlock(self, username: str) -> None:
        self._run("UPDATE users SET failed_logins=0, locked_until=NULL WHERE username=?", (username,))

    def user_lock(self, username: str, until: str) -> None:
        self._run("UPDATE users SET locked_until=?, failed_logins=0 WHERE username=?", (until, username))

    def user_role_unit(self, username: str) -> tuple[str, str] | None:
        """(role, unit) of an enabled user."""
        row = self._row("SELECT role, unit FROM users WHERE username=? AND disabled_at IS NULL", (username,))
        return None if row is None else (str(row[0]), str(row[1]))

    def login_attempt(
        self, username: str, now: str, *, max_failed: int, lock_until: str
    ) -> tuple[tuple[str, str, str, int, str | None] | None, bool]:
        """Count a login attempt before its password is checked, atomically, so parallel guesses
        cannot all see the old count. Returns ((password_hash, role, unit, attempts, disabled_at)
        or None, locked): None for an unknown user or a locked one; attempts beyond ``max_failed``
        that raced past the lock lock the account now and check nothing."""
        with self.transaction():
            row = self._row(
                "UPDATE users SET failed_logins = failed_logins + 1 WHERE username=?"
                " AND (locked_until IS NULL OR locked_until <= ?)"
                " RETURNING password_hash, role, unit, failed_logins, disabled_at",
                (username, now),
            )
            locked = (
                row is None
                and self._row("SELECT 1 FROM users WHERE username=? AND locked_until > ?", (username, now)) is not None
            )
            if row is not None and int(row[3]) > max_failed:
                self._run("UPDATE users SET locked_until=?, failed_logins=0 WHERE username=?", (lock_until, username))
                return None, True
        if row is None:
            return None, locked
        return (str(row[0]), str(row[1]), str(row[2]), int(row[3]), row[4]), False

    def login_failures_since(self, address: str, since: str) -> int:
        row = self._row("SELECT COUNT(*) FROM login_failures WHERE address=? AND at > ?", (address, since))
        return int(row[0]) if row else 0

    def login_failure_add(self, address: str, at: str, *, forget_before: str) -> None:
        with self.transaction():
            self._run("DELETE FROM login_failures WHERE at < ?", (forget_before,))
            self._run("INSERT INTO login_failures(address, at) VALUES (?,?)", (address, at))

    # --- API tokens ---------------------------------------------------------------------

    def token_insert(self, token_hash: str, name: str, username: str, at: str, by: str) -> None:
        self._run(
            "INSERT INTO api_tokens(token_hash, name, username, created_at, created_by) VALUES (?,?,?,?,?)",
            (token_hash, name, username, at, by),
        )

    def tokens(self) -> list[TokenRow]:
        return [
            (int(i), str(n), str(u), str(c), str(b), lu, rv)
            for i, n, u, c, b, lu, rv in self._rows(
                "SELECT id, name, username, created_at, created_by, last_used_at, revoked_at"
                " FROM api_tokens ORDER BY id"
            )
        ]

    def token_revoke(self, token_id: int, at: str) -> bool:
        return bool(self._run("UPDATE api_tokens SET revoked_at=? WHERE id=? AND revoked_at IS NULL", (at, token_id)))

    def token_use(self, token_hash: str, at: str) -> str | None:
        """The user a live token acts as (None: unknown, revoked, or its user disabled); notes the use."""
        row = self._row(
            "SELECT t.id, u.username FROM api_tokens t JOIN users u ON u.username = t.username"
            " WHERE t.token_hash=? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
            (token_hash,),
        )
        if row is None:
            return None
        self._run("UPDATE api_tokens SET last_used_at=? WHERE id=?", (at, row[0]))
        return str(row[1])

    # --- sessions ------------------------------------------------------------------------

    def session_open(self, token_hash: str, username: str, csrf: str, at: str, expires_at: str) -> None:
        """A new session; the expired ones go."""
        with self.transaction():
            self._run("DELETE FROM sessions WHERE expires_at < ?", (at,))
            self._run(
                "INSERT INTO sessions(token_hash, username, csrf, created_at, expires_at) VALUES (?,?,?,?,?)",
                (token_hash, username, csrf, at, expires_at),
            )

    def session_get(self, token_hash: str) -> tuple[str, str, str] | None:
        """(username, csrf, expires_at)."""
        row = self._row("SELECT username, csrf, expires_at FROM sessions WHERE token_hash=?", (token_hash,))
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def session_close(self, token_hash: str) -> None:
        self._run("DELETE FROM sessions WHERE token_hash=?", (token_hash,))

    # --- audit --------------------------------------------------------------------------

    def audit_add(self, at: str, username: str, action: str, target: str, detail: str = "") -> None:
        self._run(
            "INSERT INTO audit(at, username, action, target, detail) VALUES (?,?,?,?,?)",
            (at, username, action, target, detail),
        )

    def audit_rows(self, limit: int = 500) -> list[tuple[str, str, str, str, str]]:
        return [
            (str(a), str(u), str(ac), str(t), str(d))
            for a, u, ac, t, d in self._rows(
                "SELECT at, username, action, target, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            )
        ]

    def audit_for(self, target: str, actions: Sequence[str], limit: int = 50) -> list[tuple[str, str, str, str]]:
        """(at, username, action, detail), newest first, of ``target`` (e.g. ``kiosk:k-vb-q1``)."""
        marks = ",".join("?" * len(actions))
        return [
            (str(a), str(u), str(ac), str(d))
            for a, u, ac, d in self._rows(
                f"SELECT at, username, action, detail FROM audit WHERE target=? AND action IN ({marks})"
                " ORDER BY id DESC LIMIT ?",
                (target, *actions, limit),
            )
        ]

    def kiosk_update_state(self, kiosk: str) -> tuple[str, str] | None:
        """(version, state) of the update in ``kiosk``'s stored status, if it reported one."""
        row = self._row("SELECT doc FROM kiosk_status WHERE kiosk=?", (kiosk,))
        if row is None:
            return None
        try:
            update = json.loads(str(row[0])).get("update")
        except (ValueError, AttributeError):
            return None
        if not isinstance(update, dict):
            return None
        return str(update.get("version")), str(update.get("state"))

    # --- officers and the roster ---------------------------------------------------------

    def officer_put(self, officer_id: str, name: str, unit: str, *, within: frozenset[str] | None) -> bool:
        """Add an officer, or rename or move one; False (and nothing changed) when the id belongs to
        an officer of a unit outside ``within``."""
        with self.transaction():
            existing = self._row("SELECT unit FROM officers WHERE id=?", (officer_id,))
            if within is not None and existing is not None and existing[0] not in within:
                return False
            self._run(
                "INSERT INTO officers(id, name, unit) VALUES (?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET name=excluded.name, unit=excluded.unit",
                (officer_id, name, unit),
            )
        return True

    def officer_get(self, officer_id: str) -> tuple[str, str, str] | None:
        row = self._row("SELECT id, name, unit FROM officers WHERE id=?", (officer_id,))
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def officers_all(self) -> list[tuple[str, str, str]]:
        return [(str(i), str(n), str(u)) for i, n, u in self._rows("SELECT id, name, unit FROM officers ORDER BY name")]

    def duty_clash(
        self, counter: str, start_at: str, end_at: str, *, other_than: int = 0
    ) -> tuple[str, str, str] | None:
        """(officer, start, end) of a duty at the counter overlapping [start_at, end_at), other
        than the duty ``other_than`` (the one being changed)."""
        row = self._row(
            "SELECT officer, start_at, end_at FROM roster WHERE counter=? AND start_at < ? AND end_at > ?"
            " AND id <> ? ORDER BY start_at LIMIT 1",
            (counter, end_at, start_at, other_than),
        )
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def officer_clash(
        self, officer_id: str, start_at: str, end_at: str, *, other_than: int = 0
    ) -> tuple[str, str, str] | None:
        """(counter, start, end) of a duty of the officer overlapping [start_at, end_at)."""
        row = self._row(
            "SELECT counter, start_at, end_at FROM roster WHERE officer=? AND start_at < ? AND end_at > ?"
            " AND id <> ? ORDER BY start_at LIMIT 1",
            (officer_id, end_at, start_at, other_than),
        )
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def duties_between(
        self, counters: Sequence[str], start_at: str, end_at: str, *, limit: int, offset: int = 0
    ) -> tuple[list[tuple[int, str, str, str, str]], int]:
        """The duties at these counters overlapping [start_at, end_at), in time order, one page;
        and how many there are in all."""
        if not counters:
            return [], 0
        marks = ",".join("?" * len(counters))
        where = f" FROM roster WHERE counter IN ({marks}) AND start_at < ? AND end_at > ?"
        args = (*counters, end_at, start_at)
        total = self._row("SELECT COUNT(*)" + where, args)
        rows = self._rows(
            "SELECT id, officer, counter, start_at, end_at" + where + " ORDER BY start_at, counter LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [(int(i), str(o), str(c), str(s), str(e)) for i, o, c, s, e in rows], int(total[0] if total else 0)

    def duty_update(self, duty_id: int, officer_id: str, start_at: str, end_at: str) -> bool:
        return (
            self._run(
                "UPDATE roster SET officer=?, start_at=?, end_at=? WHERE id=?", (officer_id, start_at, end_at, duty_id)
            )
            > 0
        )

    def duty_insert(self, officer_id: str, counter: str, start_at: str, end_at: str) -> int:
        row = self._row(
            "INSERT INTO roster(officer, counter, start_at, end_at) VALUES (?,?,?,?) RETURNING id",
            (officer_id, counter, start_at, end_at),
        )
        assert row is not None
        return int(row[0])

    def duty_row(self, duty_id: int) -> tuple[int, str, str, str, str] | None:
        row = self._row("SELECT id, officer, counter, start_at, end_at FROM roster WHERE id=?", (duty_id,))
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))

    def duty_end(self, duty_id: int, at: str) -> str:
        """End a duty at ``at``: one not begun yet is removed, one going on ends then, one over
        stays as it was. Returns which: "removed", "ended" or "over"."""
        if self._run("DELETE FROM roster WHERE id=? AND start_at >= ?", (duty_id, at)):
            return "removed"
        if self._run("UPDATE roster SET end_at=? WHERE id=? AND end_at > ?", (at, duty_id, at)):
            return "ended"
        return "over"

    def duties(
        self, *, counter: str | None = None, officer: str | None = None, limit: int = 500
    ) -> list[tuple[int, str, str, str, str]]:
        where, args = [], []
        if counter:
            where.append("counter=?")
            args.append(counter)
        if officer:
            where.append("officer=?")
            args.append(officer)
        sql = "SELECT id, officer, counter, start_at, end_at FROM roster"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [
            (int(i), str(o), str(c), str(s), str(e))
            for i, o, c, s, e in self._rows(sql + " ORDER BY start_at DESC LIMIT ?", (*args, limit))
        ]

    def scores_between(self, counter: str, start: str, end: str, *, exclude_unsynced: bool) -> dict[int, int]:
        """Accepted ratings per score at a counter pressed in [start, end)."""
        clock = " AND r.clock <> 'unsynced'" if exclude_unsynced else ""
        return {
            int(score): int(n)
            for score, n in self._rows(
                "SELECT r.score, COUNT(*) FROM ratings r WHERE r.counter=? AND r.pressed_at >= ?"
                f" AND r.pressed_at < ? AND r.flag IS NULL{clock} GROUP BY r.score",
                (counter, start, end),
            )
        }

    def scores_on_duty(
        self, counter: str, start: str, end: str, *, exclude_unsynced: bool
    ) -> list[tuple[str, int, int]]:
        """(officer, score, count) of accepted ratings at a counter in [start, end) pressed while
        that officer was on duty there."""
        clock = " AND r.clock <> 'unsynced'" if exclude_unsynced else ""
        joined = self._DUTY_RATINGS.format(
            rating=f"r.pressed_at >= ? AND r.pressed_at < ? AND r.flag IS NULL{clock}",
            duty="d.counter = ? AND d.start_at < ? AND d.end_at > ?",
        )
        return [
            (str(o), int(s), int(n))
            for o, s, n in self._rows(
                f"SELECT d.officer, r.score, COUNT(*){joined} GROUP BY d.officer, r.score",
                (start, end, counter, end, start),
            )
        ]

    def officer_scores(self, officer_id: str, start: str, end: str) -> list[tuple[str, int, int]]:
        """(counter, score, count) of the officer's accepted ratings while on duty in [start, end)."""
        joined = self._DUTY_RATINGS.format(
            rating="r.pressed_at >= ? AND r.pressed_at < ? AND r.flag IS NULL",
            duty="d.officer = ? AND d.start_at < ? AND d.end_at > ?",
        )
        return [
            (str(c), int(s), int(n))
            for c, s, n in self._rows(
                f"SELECT d.counter, r.score, COUNT(*){joined} GROUP BY d.counter, r.score",
                (start, end, officer_id, end, start),
            )
        ]

    # --- a kiosk's history (its page) ----------------------------------------------------------

    def kiosk_sample_add(self, kiosk: str, at: str, doc: str, *, unless_after: str) -> bool:
        """Keep a status sample unless the kiosk has one newer than ``unless_after``."""
        return (
            self._run(
                "INSERT INTO kiosk_samples(kiosk, at, doc) SELECT ?, ?, ?"
                " WHERE NOT EXISTS (SELECT 1 FROM kiosk_samples WHERE kiosk = ? AND at > ?)",
                (kiosk, at, doc, kiosk, unless_after),
            )
            > 0
        )

    def kiosk_samples(self, kiosk: str, since: str, limit: int = 2000) -> list[tuple[str, str]]:
        """(at, doc) of the kiosk's samples since ``since``, oldest first."""
        return [
            (str(at), str(doc))
            for at, doc in self._rows(
                "SELECT at, doc FROM (SELECT at, doc FROM kiosk_samples WHERE kiosk = ? AND at >= ?"
                " ORDER BY at DESC LIMIT ?) AS recent ORDER BY at",
                (kiosk, since, limit),
            )
        ]

    def kiosk_samples_purge(self, older_than: str) -> int:
        return self._run("DELETE FROM kiosk_samples WHERE at < ?", (older_than,))

    def kiosk_transitions(self, kiosk: str, since: str, limit: int = 500) -> list[tuple[str, str]]:
        """(state, at) of the kiosk's online/offline changes since ``since``, oldest first."""
        return [
            (str(state), str(at))
            for state, at in self._rows(
                "SELECT state, at FROM (SELECT id, state, at FROM kiosk_transitions WHERE kiosk = ? AND at >= ?"
                " ORDER BY id DESC LIMIT ?) AS recent ORDER BY id",
                (kiosk, since, limit),
            )
        ]

    def kiosk_recent_ratings(self, kiosk: str, counters: Sequence[str], limit: int = 20) -> list[tuple[Any, ...]]:
        """(pressed_at, id, counter, score, flag, clock, snapshot_error) of the kiosk's newest presses."""
        if not counters:
            return []
        marks = ",".join("?" * len(counters))
        return self._rows(
            "SELECT pressed_at, id, counter, score, flag, clock, snapshot_error FROM ratings"
            f" WHERE counter IN ({marks}) AND kiosk = ? ORDER BY pressed_at DESC LIMIT ?",
            (*counters, kiosk, limit),
        )

    # --- releases (collector/releases.py) -------------------------------------------------------

    def release_put(self, version: str, manifest: str, signature: str, signer: str, by: str, at: str) -> None:
        self._run(
            "INSERT INTO releases(version, manifest, signature, signer, created_by, created_at) VALUES (?,?,?,?,?,?)",
            (version, manifest, signature, signer, by, at),
        )

    def releases_all(self) -> list[tuple[str, str, str, str, str, str]]:
        return [
            (str(a), str(b), str(c), str(d), str(e), str(f))
            for a, b, c, d, e, f in self._rows(
                "SELECT version, manifest, signature, signer, created_by, created_at FROM releases ORDER BY created_at"
            )
        ]

    def rollout_put(self, version: str, units: str, percent: int, state: str, by: str, at: str) -> None:
        self._run(
            "INSERT INTO rollouts(version, units, percent, state, updated_by, updated_at) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (version) DO UPDATE SET units=excluded.units, percent=excluded.percent,"
            " state=excluded.state, updated_by=excluded.updated_by, updated_at=excluded.updated_at",
            (version, units, percent, state, by, at),
        )

    def rollout_set_state(self, version: str, state: str, by: str, at: str) -> bool:
        return (
            self._run(
                "UPDATE rollouts SET state=?, updated_by=?, updated_at=? WHERE version=?", (state, by, at, version)
            )
            > 0
        )

    def rollouts_all(self) -> list[tuple[str, str, int, str, str, str]]:
        return [
            (str(a), str(b), int(c), str(d), str(e), str(f))
            for a, b, c, d, e, f in self._rows(
                "SELECT version, units, percent, state, updated_by, updated_at FROM rollouts ORDER BY updated_at"
            )
        ]

    # --- remote settings (collector/remotesettings.py) ---------------------------------------

    def remote_settings_put(self, scope: str, doc: str, by: str, at: str) -> int:
        """Store a scope's settings under the next revision (call inside a transaction)."""
        (revision,) = self._row("SELECT COALESCE(MAX(revision), 0) + 1 FROM remote_settings") or (1,)
        self._run(
            "INSERT INTO remote_settings(scope, doc, revision, updated_by, updated_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT (scope) DO UPDATE SET doc=excluded.doc, revision=excluded.revision,"
            " updated_by=excluded.updated_by, updated_at=excluded.updated_at",
            (scope, doc, int(revision), by, at),
        )
        return int(revision)

    def remote_settings_all(self) -> list[tuple[str, str, int, str, str]]:
        return [
            (str(a), str(b), int(c), str(d), str(e))
            for a, b, c, d, e in self._rows(
                "SELECT scope, doc, revision, updated_by, updated_at FROM remote_settings ORDER BY scope"
            )
        ]

    # --- alert rules and alerts -------------------------------------------------------------

    def alert_rules_put(self, unit: str, doc: str) -> None:
        self._run(
            "INSERT INTO alert_rules(unit, doc) VALUES (?,?) ON CONFLICT (unit) DO UPDATE SET doc=excluded.doc",
            (unit, doc),
        )

    def alert_rules_all(self) -> dict[str, str]:
        return {str(unit): str(doc) for unit, doc in self._rows("SELECT unit, doc FROM alert_rules")}

    def alert_rows(self, *, open_only: bool = False, limit: int = 500) -> list[AlertRow]:
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts"
        if open_only:
            sql += " WHERE acked_at IS NULL"
        return [_alert_row(r) for r in self._rows(sql + " ORDER BY id DESC LIMIT ?", (limit,))]

    def alert_row(self, alert_id: int) -> AlertRow | None:
        row = self._row(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id=?", (alert_id,))
        return None if row is None else _alert_row(row)

    def alert_ack(self, alert_id: int, username: str, at: str, comment: str) -> bool:
        """Acknowledge an open alert; False when it was acknowledged already (it stays as it was)."""
        return (
            self._run(
                "UPDATE alerts SET acked_by=?, acked_at=?, ack_comment=? WHERE id=? AND acked_at IS NULL",
                (username, at, comment, alert_id),
            )
            > 0
        )

    def alert_open(self, kind: str, target: str, unit: str, at: str, detail: str) -> int | None:
        """Open an alert unless one of this kind for this target is still open; its id, or None."""
        with self.transaction():
            if self._row("SELECT 1 FROM alerts WHERE kind=? AND target=? AND acked_at IS NULL", (kind, target)):
                return None
            row = self._row(
                "INSERT INTO alerts(kind, target, unit, opened_at, detail) VALUES (?,?,?,?,?) RETURNING id",
                (kind, target, unit, at, detail),
            )
        return None if row is None else int(row[0])

    def unhappy_since(self, counter: str, since: str) -> tuple[int, int]:
        """(accepted ratings, of which "Không hài lòng") at a counter pressed since ``since``."""
        row = self._row(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN score = 1 THEN 1 ELSE 0 END), 0) FROM ratings"
            " WHERE counter=? AND pressed_at >= ? AND flag IS NULL",
            (counter, since),
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def last_rating_at(self, counter: str) -> str | None:
        row = self._row("SELECT MAX(pressed_at) FROM ratings WHERE counter=? AND flag IS NULL", (counter,))
        return None if row is None or row[0] is None else str(row[0])

    # --- pictures ------------------------------------------------------------------------------
    # A snapshot's ``path`` is a file (SQLite's default: content-addressed under data_dir) or
    # ``db:<sha256>``, a row of ``pictures`` (PostgreSQL's: every collector sees it).

    def picture(self, ref: str) -> bytes | None:
        """The bytes of a stored picture; None when they are gone."""
        if ref.startswith(PICTURE_IN_DB):
            row = self._row("SELECT data FROM pictures WHERE sha256=?", (ref[len(PICTURE_IN_DB) :],))
            return None if row is None else bytes(row[0])
        try:
            return Path(ref).read_bytes()
        except OSError:
            return None

    def _drop_pictures(self, refs: Sequence[str]) -> list[str]:
        """Delete the pictures kept in the database among ``refs`` (no rating needs them any more);
        the files among them are returned for the caller to remove."""
        files = []
        for ref in refs:
            if ref.startswith(PICTURE_IN_DB):
                self._run("DELETE FROM pictures WHERE sha256=?", (ref[len(PICTURE_IN_DB) :],))
            else:
                files.append(ref)
        return files

    # --- raw ratings, for auditors ------------------------------------------------------------

    def raw_ratings(
        self, counters: Sequence[str], start: str, end: str, *, after: tuple[str, str] = ("", ""), limit: int = 5000
    ) -> list[tuple[str, str, str, str | None, int, str | None, str]]:
        """(pressed_at, id, counter, officer on duty, score, flag, clock) of every press at these
        counters in [start, end), flagged ones included, in time order; one page after ``after``
        (pressed_at, id), so an export of millions is read a page at a time."""
        if not counters:
            return []
        marks = ",".join("?" * len(counters))
        # The page is chosen first, then each of its presses looks up its duty: the one that began
        # last before it at that counter (duties there never overlap), if it had not ended. A join
        # of every press in the period with every duty begun before it, per page, took a minute
        # for a province's year (76,000 presses, 9,000 duties).
        rows = self._rows(
            "SELECT p.pressed_at, p.id, p.counter,"
            " (SELECT CASE WHEN d.end_at > p.pressed_at THEN d.officer END FROM roster d"
            "  WHERE d.counter = p.counter AND d.start_at <= p.pressed_at ORDER BY d.start_at DESC LIMIT 1),"
            " p.score, p.flag, p.clock FROM ("
            "SELECT r.pressed_at, r.id, r.counter, r.score, r.flag, r.clock FROM ratings r"
            f" WHERE r.counter IN ({marks}) AND r.pressed_at >= ? AND r.pressed_at < ?"
            " AND (r.pressed_at > ? OR (r.pressed_at = ? AND r.id > ?))"
            " ORDER BY r.pressed_at, r.id LIMIT ?) AS p ORDER BY p.pressed_at, p.id",
            (*counters, start, end, after[0], after[0], after[1], limit),
        )
        return [(str(p), str(i), str(c), o, int(sc), f, str(cl)) for p, i, c, o, sc, f, cl in rows]

    # --- reviews and single ratings -------------------------------------------------------------

    def reviewed_by(self, rating_ids: Sequence[str]) -> dict[str, str]:
        """Who reviewed each of these presses already (those not reviewed are absent)."""
        if not rating_ids:
            return {}
        marks = ",".join("?" * len(rating_ids))
        rows = self._rows(f"SELECT rating_id, username FROM reviews WHERE rating_id IN ({marks})", tuple(rating_ids))
        return {str(r): str(u) for r, u in rows}

    def review_put(self, rating_id: str, username: str, comment: str, at: str) -> None:
        self._run(
            "INSERT INTO reviews(rating_id, username, comment, at) VALUES (?,?,?,?) ON CONFLICT (rating_id)"
            " DO UPDATE SET username=excluded.username, comment=excluded.comment, at=excluded.at",
            (rating_id, username, comment, at),
        )

    def pictured_neighbours(self, counter: str, pressed_at: str, rating_id: str) -> tuple[str | None, str | None]:
        """(the one before, the one after): ratings with a picture at the counter next to this one,
        in press order."""
        before = self._row(
            "SELECT r.id FROM ratings r JOIN snapshots s ON s.rating_id = r.id WHERE r.counter = ?"
            " AND (r.pressed_at < ? OR (r.pressed_at = ? AND r.id < ?)) ORDER BY r.pressed_at DESC, r.id DESC LIMIT 1",
            (counter, pressed_at, pressed_at, rating_id),
        )
        after = self._row(
            "SELECT r.id FROM ratings r JOIN snapshots s ON s.rating_id = r.id WHERE r.counter = ?"
            " AND (r.pressed_at > ? OR (r.pressed_at = ? AND r.id > ?)) ORDER BY r.pressed_at, r.id LIMIT 1",
            (counter, pressed_at, pressed_at, rating_id),
        )
        return (str(before[0]) if before else None, str(after[0]) if after else None)

    def rating_with_snapshot(self, rating_id: str) -> dict[str, Any] | None:
        row = self._row(
            "SELECT r.id, r.counter, r.kiosk, r.score, r.flag, r.pressed_at, s.path FROM ratings r"
            " LEFT JOIN snapshots s ON s.rating_id = r.id WHERE r.id = ?",
            (rating_id,),
        )
        if row is None:
            return None
        names = ["id", "counter", "kiosk", "score", "flag", "pressed_at", "snapshot_path"]
        return dict(zip(names, row, strict=True))


# Why a press is in the review queue, and the condition that picks it (a fixed list: the page's
# filter names one of these keys, never SQL).
REVIEW_REASONS = {
    "lockout": "flag = 'lockout'",
    "burst": "flag = 'burst'",
    "unsynced": "clock = 'unsynced'",
    "after_hours": "after_hours",
}


def review_condition(reasons: Sequence[str] | None) -> str:
    """The WHERE condition of the review queue for these reasons (None or empty: every reason)."""
    chosen = [REVIEW_REASONS[r] for r in (reasons or ()) if r in REVIEW_REASONS]
    if not chosen:
        chosen = ["flag IS NOT NULL", "clock = 'unsynced'", "after_hours"]
    return "(" + " OR ".join(chosen) + ")"


def fresh_ratings(
    groups: Sequence[tuple[str, Sequence[wire.Rating]]],
) -> tuple[dict[str, tuple[str, wire.Rating]], list[str]]:
    """id → (kiosk, rating) of the first copy of each id, and the ids of the later copies."""
    fresh: dict[str, tuple[str, wire.Rating]] = {}
    duplicates: list[str] = []
    for kiosk, ratings in groups:
        for r in ratings:
            if r.id in fresh:
                duplicates.append(r.id)
            else:
                fresh[r.id] = (kiosk, r)
    return fresh, duplicates


def _alert_row(row: Sequence[Any]) -> AlertRow:
    i, kind, target, unit, opened_at, detail, by, at, comment = row
    return (int(i), str(kind), str(target), str(unit), str(opened_at), str(detail), by, at, comment)
