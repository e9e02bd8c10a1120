"""Where ratings live: the ``RatingStore`` port and ``SqliteStore``, the embedded default.

Each rating id is stored once (a duplicate is recognised, not stored again). Daily roll-ups per
counter, day and score are updated in the same transaction as the insert, so reports read a few
thousand roll-up rows instead of millions of ratings.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import sqlite_utils

from collector.errors import ConfigError
from collector.registry import Registry
from collector.sqlshared import (  # noqa: F401 - the records' and helpers' old home: imported from here too
    MAX_QUARANTINE_PAYLOAD,
    Assignments,
    InstallSeq,
    MailSent,
    QuarantineEntry,
    SharedSql,
    bounded_quarantine,
    fresh_ratings,
    review_condition,
    safe_text,
)
from kiosk import wire
from kiosk.files import write_atomically
from kiosk.sqlite import Migration, migrate, open_database, savepoint, transaction

if TYPE_CHECKING:
    from collector.pgstore import PostgresStore


@dataclass(frozen=True)
class Count:
    """How many ratings (or flagged presses) of one score, for a counter and/or a period."""

    counter: str
    period: str  # a day (YYYY-MM-DD), a month (YYYY-MM), or "" for the whole range
    score: int
    flagged: bool
    n: int
    unsynced: int = 0  # of the n, pressed while the kiosk's clock was not synchronised: time unverified


@dataclass(frozen=True)
class QuarantineStats:
    entries: int
    payload_bytes: int
    dropped: dict[tuple[str, str], int]  # (reason, why: expired | over_quota) -> entries removed


@dataclass(frozen=True)
class KioskBacklog:
    """What a kiosk's latest status says it still holds (an offline kiosk: its last report)."""

    kiosk: str
    state: str
    ratings: int
    oldest_at: str | None  # press time of the oldest unacked rating; None: the kiosk did not say
    reported_at: str


class RatingStore(Protocol):
    """What ingest and reports need from a store; SQLite and PostgreSQL both provide it."""

    def transaction(self) -> AbstractContextManager[Any]: ...
    def replace_registry(self, registry: Registry) -> None: ...
    def load_registry(self) -> Registry: ...
    def add_ratings(
        self,
        kiosk: str,
        ratings: Sequence[wire.Rating],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]: ...
    def add_rating_groups(
        self,
        groups: Sequence[tuple[str, Sequence[wire.Rating]]],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]: ...
    def rating_kiosks(self, ids: Sequence[str]) -> dict[str, str]: ...
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
    ) -> int: ...
    def savepoint(self) -> AbstractContextManager[Any]: ...
    def is_outage(self, exc: BaseException) -> bool: ...
    def ping(self) -> None: ...
    def assignments(self) -> Assignments: ...
    def remote_settings_put(self, scope: str, doc: str, by: str, at: str) -> int: ...
    def remote_settings_all(self) -> list[tuple[str, str, int, str, str]]: ...
    def audit_add(self, at: str, username: str, action: str, target: str, detail: str = "") -> None: ...
    def audit_for(self, target: str, actions: Sequence[str], limit: int = 50) -> list[tuple[str, str, str, str]]: ...
    def kiosk_update_state(self, kiosk: str) -> tuple[str, str] | None: ...
    def kiosk_sample_add(self, kiosk: str, at: str, doc: str, *, unless_after: str) -> bool: ...
    def kiosk_samples_purge(self, older_than: str) -> int: ...
    def snapshot_expected(self, rating_id: str) -> tuple[str, str | None, int | None] | None: ...
    def has_snapshot(self, rating_id: str) -> bool: ...
    def add_snapshot(self, rating_id: str, sha256: str, path: str, nbytes: int, received_at: str) -> None: ...
    def record_status(self, kiosk: str, doc: dict[str, Any], received_at: str) -> None: ...
    def counts(self, counters: Sequence[str], day_from: date, day_to: date, *, by: str) -> list[Count]: ...
    def kiosk_statuses(self) -> dict[str, dict[str, Any]]: ...
    def backlogs(self) -> list[KioskBacklog]: ...
    def mails_sent(self, units: Sequence[str] | None = None) -> list[MailSent]: ...
    def late_arrivals(self, counters: Sequence[str], month: str, after: str) -> dict[int, int]: ...
    def installs(self) -> list[InstallSeq]: ...
    def quarantined(
        self, *, include_replayed: bool = False, limit: int = 1000, after_id: int = 0
    ) -> list[QuarantineEntry]: ...
    def expire_quarantine(self, *, older_than: str, max_bytes: int) -> dict[tuple[str, str], int]: ...
    def quarantine_stats(self) -> QuarantineStats: ...
    def mark_replayed(self, entry_id: int, outcome: str, at: str) -> None: ...
    def purge_snapshots(self, older_than: str) -> list[str]: ...
    def keep_picture(self, root: Path, digest: str, data: bytes) -> str: ...
    def picture(self, ref: str) -> bytes | None: ...
    def rating_count(self) -> int: ...
    def close(self) -> None: ...


def _m1_initial(db: sqlite_utils.Database) -> None:
    for sql in (
        "CREATE TABLE units (id TEXT PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL, parent TEXT)",
        "CREATE TABLE counters (id TEXT PRIMARY KEY, unit TEXT NOT NULL, name TEXT NOT NULL)",
        "CREATE TABLE kiosks (id TEXT PRIMARY KEY, counter TEXT NOT NULL)",
        """CREATE TABLE ratings (
            id TEXT PRIMARY KEY, kiosk TEXT NOT NULL, install TEXT NOT NULL, seq INTEGER NOT NULL,
            counter TEXT NOT NULL, unit TEXT NOT NULL, score INTEGER NOT NULL, flag TEXT,
            pressed_at TEXT NOT NULL, local_day TEXT NOT NULL, clock TEXT NOT NULL,
            snapshot_sha256 TEXT, snapshot_bytes INTEGER, snapshot_error TEXT, fw TEXT NOT NULL,
            received_at TEXT NOT NULL)""",
        "CREATE INDEX ratings_counter_day ON ratings(counter, local_day)",
        "CREATE INDEX ratings_kiosk_seq ON ratings(kiosk, install, seq)",
        """CREATE TABLE daily (
            counter TEXT NOT NULL, day TEXT NOT NULL, score INTEGER NOT NULL, flagged INTEGER NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (counter, day, score, flagged)) WITHOUT ROWID""",
        """CREATE TABLE installs (
            kiosk TEXT NOT NULL, install TEXT NOT NULL, count INTEGER NOT NULL, min_seq INTEGER NOT NULL,
            max_seq INTEGER NOT NULL, last_received_at TEXT NOT NULL, PRIMARY KEY (kiosk, install))""",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
            received_at TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
            replayed_at TEXT, replay_outcome TEXT)""",
        """CREATE TABLE snapshots (
            rating_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, path TEXT NOT NULL, bytes INTEGER NOT NULL,
            received_at TEXT NOT NULL)""",
        "CREATE INDEX snapshots_received ON snapshots(received_at)",
        """CREATE TABLE kiosk_status (
            kiosk TEXT PRIMARY KEY, state TEXT NOT NULL, doc TEXT NOT NULL, received_at TEXT NOT NULL)""",
        """CREATE TABLE kiosk_transitions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kiosk TEXT NOT NULL, state TEXT NOT NULL,
            at TEXT NOT NULL)""",
        "CREATE INDEX kiosk_transitions_kiosk ON kiosk_transitions(kiosk, at)",
    ):
        db.execute(sql)


def _m2_monthly(db: sqlite_utils.Database) -> None:
    """Monthly roll-ups beside the daily ones: a year's report reads 12 rows per counter, not 365."""
    db.execute(
        """CREATE TABLE monthly (
            counter TEXT NOT NULL, month TEXT NOT NULL, score INTEGER NOT NULL, flagged INTEGER NOT NULL,
            n INTEGER NOT NULL, PRIMARY KEY (counter, month, score, flagged)) WITHOUT ROWID"""
    )
    db.execute(
        "INSERT INTO monthly SELECT counter, substr(day, 1, 7), score, flagged, SUM(n) FROM daily"
        " GROUP BY counter, substr(day, 1, 7), score, flagged"
    )


def _m3_people(db: sqlite_utils.Database) -> None:
    """Users, sessions and the audit log; officers and their duty roster; reviews and alerts."""
    for sql in (
        """CREATE TABLE users (
            username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, unit TEXT NOT NULL,
            failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT, created_at TEXT NOT NULL)""",
        """CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,
            created_at TEXT NOT NULL, expires_at TEXT NOT NULL)""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, username TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')""",
        "CREATE TABLE officers (id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL)",
        """CREATE TABLE roster (
            id INTEGER PRIMARY KEY AUTOINCREMENT, officer TEXT NOT NULL, counter TEXT NOT NULL,
            start_at TEXT NOT NULL, end_at TEXT NOT NULL)""",
        "CREATE INDEX roster_counter ON roster(counter, start_at)",
        "CREATE INDEX ratings_counter_pressed ON ratings(counter, pressed_at)",
        "CREATE INDEX ratings_flagged ON ratings(counter, pressed_at) WHERE flag IS NOT NULL",
        """CREATE TABLE reviews (
            rating_id TEXT PRIMARY KEY, username TEXT NOT NULL, comment TEXT NOT NULL, at TEXT NOT NULL)""",
        """CREATE TABLE alert_rules (unit TEXT PRIMARY KEY, doc TEXT NOT NULL)""",
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, target TEXT NOT NULL,
            unit TEXT NOT NULL, opened_at TEXT NOT NULL, detail TEXT NOT NULL,
            acked_by TEXT, acked_at TEXT, ack_comment TEXT)""",
        "CREATE INDEX alerts_open ON alerts(kind, target) WHERE acked_at IS NULL",
        """CREATE TABLE mail_log (
            unit TEXT NOT NULL, month TEXT NOT NULL, sent_at TEXT NOT NULL, recipients TEXT NOT NULL,
            PRIMARY KEY (unit, month))""",
    ):
        db.execute(sql)


def _m4_trust(db: sqlite_utils.Database) -> None:
    """Kiosk assignment history (counter and time checks), and a quarantine that knows which
    kiosk, install and seq an entry holds (seq gaps) and what it has dropped (bounded disk use)."""
    for sql in (
        """CREATE TABLE assignments (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kiosk TEXT NOT NULL, counter TEXT NOT NULL,
            since TEXT, until TEXT)""",
        "CREATE INDEX assignments_kiosk ON assignments(kiosk)",
        # Kiosks enrolled before the history was kept: their first enrolment is unknown (NULL);
        # counters they have rated at before are kept as earlier (closed) assignments.
        "INSERT INTO assignments(kiosk, counter, since) SELECT id, counter, NULL FROM kiosks",
        """INSERT INTO assignments(kiosk, counter, since, until)
            SELECT DISTINCT r.kiosk, r.counter, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM ratings r
            WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.kiosk = r.kiosk AND a.counter = r.counter)""",
        "ALTER TABLE quarantine ADD COLUMN kiosk TEXT",
        "ALTER TABLE quarantine ADD COLUMN install TEXT",
        "ALTER TABLE quarantine ADD COLUMN seq INTEGER",
        "ALTER TABLE quarantine ADD COLUMN bytes INTEGER",
        "UPDATE quarantine SET bytes = length(payload)",
        "CREATE INDEX quarantine_install ON quarantine(kiosk, install, seq) WHERE install IS NOT NULL",
        "CREATE INDEX quarantine_received ON quarantine(received_at)",
        """CREATE TABLE quarantine_dropped (
            reason TEXT NOT NULL, why TEXT NOT NULL, n INTEGER NOT NULL, last_at TEXT NOT NULL,
            PRIMARY KEY (reason, why))""",
    ):
        db.execute(sql)


def _m5_report_trust(db: sqlite_utils.Database) -> None:
    """Roll-ups count the ratings whose time is unverified (clock ``unsynced``); ratings that arrive
    after their month has ended are noted (late arrivals for a month already mailed); pictures are
    found by file, so a file that two ratings share is kept while either needs it."""
    for sql in (
        "ALTER TABLE daily ADD COLUMN unsynced INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE monthly ADD COLUMN unsynced INTEGER NOT NULL DEFAULT 0",
        """UPDATE daily SET unsynced = u.n FROM (
            SELECT counter, local_day AS day, score, flag IS NOT NULL AS flagged, COUNT(*) AS n FROM ratings
            WHERE clock = 'unsynced' GROUP BY 1, 2, 3, 4) AS u
            WHERE daily.counter = u.counter AND daily.day = u.day AND daily.score = u.score
            AND daily.flagged = u.flagged""",
        """UPDATE monthly SET unsynced = u.n FROM (
            SELECT counter, substr(local_day, 1, 7) AS month, score, flag IS NOT NULL AS flagged, COUNT(*) AS n
            FROM ratings WHERE clock = 'unsynced' GROUP BY 1, 2, 3, 4) AS u
            WHERE monthly.counter = u.counter AND monthly.month = u.month AND monthly.score = u.score
            AND monthly.flagged = u.flagged""",
        """CREATE TABLE after_month (
            rating_id TEXT PRIMARY KEY, counter TEXT NOT NULL, month TEXT NOT NULL, score INTEGER NOT NULL,
            flagged INTEGER NOT NULL, received_at TEXT NOT NULL)""",
        "CREATE INDEX after_month_month ON after_month(month, received_at)",
        # Before this migration the local month of receipt is not known: the UTC month stands in
        # (a monthly mail goes out after 07:00 local on the 1st, when both months agree in UTC+7).
        """INSERT INTO after_month SELECT id, counter, substr(local_day, 1, 7), score, flag IS NOT NULL, received_at
            FROM ratings WHERE substr(local_day, 1, 7) < substr(received_at, 1, 7)""",
        "CREATE INDEX snapshots_path ON snapshots(path)",
    ):
        db.execute(sql)


def _m6_access(db: sqlite_utils.Database) -> None:
    """Disabled users, API tokens for scripts, and failed logins per client address."""
    for sql in (
        "ALTER TABLE users ADD COLUMN disabled_at TEXT",
        """CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
            username TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL,
            last_used_at TEXT, revoked_at TEXT)""",
        """CREATE TABLE login_failures (address TEXT NOT NULL, at TEXT NOT NULL)""",
        "CREATE INDEX login_failures_address ON login_failures(address, at)",
    ):
        db.execute(sql)


def _m7_pictures(db: sqlite_utils.Database) -> None:
    """Pictures kept in the store itself (``snapshots.path`` = ``db:<sha256>``). PostgreSQL keeps
    them here so that every collector sees them; SQLite keeps files and reads this table only for
    what came from a PostgreSQL store (``collector store copy``)."""
    db.execute("CREATE TABLE pictures (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL)")


def _m8_remote_settings(db: sqlite_utils.Database) -> None:
    """Remote settings per unit or kiosk (``scope`` = ``unit:<id>`` or ``kiosk:<id>``)."""
    db.execute(
        """CREATE TABLE remote_settings (scope TEXT PRIMARY KEY, doc TEXT NOT NULL, revision INTEGER NOT NULL,
            updated_by TEXT NOT NULL, updated_at TEXT NOT NULL)"""
    )


RELEASE_TABLES = (
    """CREATE TABLE releases (version TEXT PRIMARY KEY, manifest TEXT NOT NULL, signature TEXT NOT NULL,
        signer TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL)""",
    """CREATE TABLE rollouts (version TEXT PRIMARY KEY, units TEXT NOT NULL, percent INTEGER NOT NULL,
        state TEXT NOT NULL, updated_by TEXT NOT NULL, updated_at TEXT NOT NULL)""",
)


def _m9_kiosk_samples(db: sqlite_utils.Database) -> None:
    """A kiosk's status every SAMPLE_EVERY_S (backlog, disk, camera, clock), for its own page."""
    db.execute("CREATE TABLE kiosk_samples (kiosk TEXT NOT NULL, at TEXT NOT NULL, doc TEXT NOT NULL)")
    db.execute("CREATE INDEX kiosk_samples_kiosk_at ON kiosk_samples(kiosk, at)")


def _m10_releases(db: sqlite_utils.Database) -> None:
    """Signed software releases and their staged rollouts (collector/releases.py)."""
    for sql in RELEASE_TABLES:
        db.execute(sql)


AUDIT_BY_TARGET = "CREATE INDEX audit_target ON audit(target, id)"


def _m11_audit_by_target(db: sqlite_utils.Database) -> None:
    """A kiosk's page lists its own history (updates, renewals, self-tests, settings) from the audit."""
    db.execute(AUDIT_BY_TARGET)


MIGRATIONS: list[Migration] = [
    _m1_initial,
    _m2_monthly,
    _m3_people,
    _m4_trust,
    _m5_report_trust,
    _m6_access,
    _m7_pictures,
    _m8_remote_settings,
    _m9_kiosk_samples,
    _m10_releases,
    _m11_audit_by_target,
]


def _split_range(
    day_from: date, day_to: date
) -> tuple[tuple[str, str] | None, tuple[str, str] | None, tuple[str, str] | None]:
    """Split a range of days into (head days, whole months, tail days); each part may be None."""
    first_full = day_from if day_from.day == 1 else _next_month(day_from)
    end = day_to + timedelta(days=1)  # exclusive
    full_end = end if end.day == 1 else end.replace(day=1)  # exclusive end of the last whole month
    if first_full >= full_end:
        return (day_from.isoformat(), day_to.isoformat()), None, None
    head = None if first_full == day_from else (day_from.isoformat(), (first_full - timedelta(days=1)).isoformat())
    tail = None if full_end == end else (full_end.isoformat(), day_to.isoformat())
    months = (first_full.isoformat()[:7], (full_end - timedelta(days=1)).isoformat()[:7])
    return head, months, tail


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def local_day(pressed_at: str, tz: ZoneInfo) -> str:
    """The local calendar day of a press (a press at 18:30Z is the next day in UTC+7)."""
    return wire.parse_time(pressed_at).astimezone(tz).date().isoformat()


class SqliteStore(SharedSql):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # FULL: the collector acks right after the commit, and an acked rating is gone from the kiosk.
        self.db = open_database(self.path, synchronous="FULL")
        self.conn: sqlite3.Connection = self.db.conn
        migrate(self.db, MIGRATIONS, name=f"store {self.path}")

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        if not url.startswith("sqlite:///"):
            raise ValueError(f"not a sqlite URL: {url}")
        return cls(url[len("sqlite:///") :])

    def close(self) -> None:
        self.conn.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.conn)

    def savepoint(self) -> AbstractContextManager[sqlite3.Connection]:
        """Inside transaction(): a part that can fail alone and leave the rest of it standing."""
        return savepoint(self.conn)

    def is_outage(self, exc: BaseException) -> bool:
        """Whether an error is the store's (disk full, file gone, locked, I/O), not the data's.

        Values the store cannot hold (OverflowError, UnicodeEncodeError, IntegrityError) are the
        data's fault and are quarantined; an outage pauses ingest and nothing is acked.
        """
        return isinstance(exc, sqlite3.OperationalError | OSError) or (
            isinstance(exc, sqlite3.DatabaseError)
            and not isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError)
        )

    def ping(self) -> None:
        self.conn.execute("SELECT 1 FROM ratings LIMIT 1").fetchall()

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.conn.execute(sql, args).fetchall()]

    def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self.conn.execute(sql, args).rowcount or 0)

    # --- registry --------------------------------------------------------------

    def replace_registry(self, registry: Registry, *, at: str | None = None) -> None:
        """Make ``registry`` the registry; a kiosk new or moved to another counter gets a new
        assignment (and the old one an end), so ratings from its earlier counter still count."""
        at = at or now_text()
        with self.transaction():
            current = {
                kiosk: counter
                for kiosk, counter in self.conn.execute("SELECT kiosk, counter FROM assignments WHERE until IS NULL")
            }
            for kiosk, counter in current.items():
                entry = registry.kiosks.get(kiosk)
                if entry is None or entry.counter != counter:
                    self.conn.execute("UPDATE assignments SET until=? WHERE kiosk=? AND until IS NULL", (at, kiosk))
            self.conn.executemany(
                "INSERT INTO assignments(kiosk, counter, since) VALUES (?,?,?)",
                [(k.id, k.counter, at) for k in registry.kiosks.values() if current.get(k.id) != k.counter],
            )
            for table in ("units", "counters", "kiosks"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.executemany(
                "INSERT INTO units VALUES (?,?,?,?)",
                [(u.id, u.name, u.level, u.parent) for u in registry.units.values()],
            )
            self.conn.executemany(
                "INSERT INTO counters VALUES (?,?,?)",
                [(c.id, c.unit, c.name) for c in registry.counters.values()],
            )
            self.conn.executemany(
                "INSERT INTO kiosks VALUES (?,?)", [(k.id, k.counter) for k in registry.kiosks.values()]
            )

    # --- ingest (call inside transaction()) ----------------------------------------

    def add_rating_groups(
        self,
        groups: Sequence[tuple[str, Sequence[wire.Rating]]],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]:
        fresh, duplicates = fresh_ratings(groups)
        days = {i: r.pressed_at_dt.astimezone(tz).date().isoformat() for i, (_, r) in fresh.items()}
        rows = [
            (
                r.id, kiosk, r.install, r.seq, r.counter, unit_of[r.counter], r.score, r.flag, r.pressed_at,
                days[r.id], r.clock, r.snapshot.sha256 if r.snapshot else None,
                r.snapshot.bytes if r.snapshot else None, r.snapshot_error, r.fw, received_at,
            )
            for kiosk, r in fresh.values()
        ]  # fmt: skip
        # One statement per 500 ratings: those already stored are skipped, and RETURNING says which
        # went in, so the roll-ups below count exactly those.
        inserted: set[str] = set()
        for chunk in chunks_of(rows, 500):
            marks = ",".join([_ROW_MARKS] * len(chunk))
            flat = [value for row in chunk for value in row]
            inserted.update(
                row[0]
                for row in self.conn.execute(
                    f"INSERT INTO ratings VALUES {marks} ON CONFLICT (id) DO NOTHING RETURNING id", flat
                )
            )
        duplicates.extend(i for i in fresh if i not in inserted)
        rollup: dict[tuple[str, str, int, int], list[int]] = defaultdict(lambda: [0, 0])  # [n, unsynced]
        installs: dict[tuple[str, str], list[int]] = {}
        late = []
        received_month = wire.parse_time(received_at).astimezone(tz).date().isoformat()[:7]
        for rating_id in inserted:
            kiosk, r = fresh[rating_id]
            day = days[rating_id]
            counted = rollup[(r.counter, day, r.score, 1 if r.flag else 0)]
            counted[0] += 1
            counted[1] += r.clock == "unsynced"
            if day[:7] < received_month:
                late.append((r.id, r.counter, day[:7], r.score, 1 if r.flag else 0, received_at))
            seen = installs.setdefault((kiosk, r.install), [0, r.seq, r.seq])
            seen[0] += 1
            seen[1] = min(seen[1], r.seq)
            seen[2] = max(seen[2], r.seq)
        # Sorted, so that every writer takes the rows in one order.
        self.conn.executemany(
            "INSERT INTO daily(counter, day, score, flagged, n, unsynced) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (counter, day, score, flagged) DO UPDATE SET n = n + excluded.n,"
            " unsynced = unsynced + excluded.unsynced",
            [(*key, n, unsynced) for key, (n, unsynced) in sorted(rollup.items())],
        )
        monthly: dict[tuple[str, str, int, int], list[int]] = defaultdict(lambda: [0, 0])
        for (counter, day, score, flagged), (n, unsynced) in rollup.items():
            month = monthly[(counter, day[:7], score, flagged)]
            month[0] += n
            month[1] += unsynced
        self.conn.executemany(
            "INSERT INTO monthly(counter, month, score, flagged, n, unsynced) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (counter, month, score, flagged) DO UPDATE SET n = n + excluded.n,"
            " unsynced = unsynced + excluded.unsynced",
            [(*key, n, unsynced) for key, (n, unsynced) in sorted(monthly.items())],
        )
        # Rare (a kiosk that was offline over a month's end): ratings that came after their month closed.
        self.conn.executemany("INSERT INTO after_month VALUES (?,?,?,?,?,?)", late)
        self.conn.executemany(
            "INSERT INTO installs VALUES (?,?,?,?,?,?) ON CONFLICT (kiosk, install) DO UPDATE SET"
            " count = count + excluded.count, min_seq = MIN(min_seq, excluded.min_seq),"
            " max_seq = MAX(max_seq, excluded.max_seq), last_received_at = excluded.last_received_at",
            [(kiosk, install, c, lo, hi, received_at) for (kiosk, install), (c, lo, hi) in sorted(installs.items())],
        )
        return [i for i in fresh if i in inserted], duplicates

    # --- reading -----------------------------------------------------------------

    def counts(self, counters: Sequence[str], day_from: date, day_to: date, *, by: str) -> list[Count]:
        """Roll-up counts over local days ``day_from``..``day_to``, summed in SQL.

        ``by="counter"``: one figure per counter (``period`` is ""); ``by="day"``: per day over all
        the counters (``counter`` is ""); ``by="month"``: per month. Whole months are read from the
        monthly roll-up and only the edge days from the daily one, so a year costs about twelve
        rows per counter and score, not 365.
        """
        head, months, tail = _split_range(day_from, day_to)
        parts: list[tuple[str, str, str, str]] = []  # (table, period expression, low, high)
        day_expr = {"counter": "''", "day": "day", "month": "substr(day, 1, 7)"}[by]
        month_expr = {"counter": "''", "month": "month"}.get(by)
        if by == "day" or months is None:
            parts.append(("daily", day_expr, day_from.isoformat(), day_to.isoformat()))
        else:
            assert month_expr is not None
            parts.append(("monthly", month_expr, *months))
            for edge in (head, tail):
                if edge is not None:
                    parts.append(("daily", day_expr, *edge))
        key = "''" if by != "counter" else "counter"
        summed: dict[tuple[str, str, int, bool], list[int]] = defaultdict(lambda: [0, 0])
        for table, period, low, high in parts:
            column = "day" if table == "daily" else "month"
            for chunk in chunks(list(counters), 500):
                marks = ",".join("?" * len(chunk))
                for c, p, s, f, n, unsynced in self.conn.execute(
                    f"SELECT {key}, {period}, score, flagged, SUM(n), SUM(unsynced) FROM {table}"
                    f" WHERE counter IN ({marks}) AND {column} BETWEEN ? AND ?"
                    f" GROUP BY 1, 2, score, flagged",
                    (*chunk, low, high),
                ):
                    total = summed[(c, p, s, bool(f))]
                    total[0] += n
                    total[1] += unsynced
        return [Count(c, p, s, f, n, unsynced) for (c, p, s, f), (n, unsynced) in summed.items()]

    def kiosk_statuses(self) -> dict[str, dict[str, Any]]:
        out = {}
        for kiosk, state, doc, received_at in self.conn.execute(
            "SELECT kiosk, state, doc, received_at FROM kiosk_status"
        ):
            out[kiosk] = {**json.loads(doc), "state": state, "received_at": received_at}
        return out

    def backlogs(self) -> list[KioskBacklog]:
        """Kiosks whose latest status reports ratings not yet acked, with the oldest one's press."""
        out = []
        # Only the statuses with a backlog are read whole; a document SQLite's JSON cannot read
        # (Python's json writes Infinity) is read by Python instead of failing the page.
        for kiosk, state, doc, received_at in self.conn.execute(
            "SELECT kiosk, state, doc, received_at FROM kiosk_status"
            " WHERE CASE WHEN json_valid(doc) THEN json_extract(doc, '$.backlog.ratings') > 0 ELSE 1 END"
        ):
            backlog = json.loads(doc).get("backlog")
            ratings = backlog.get("ratings") if isinstance(backlog, dict) else None
            if not isinstance(ratings, int) or isinstance(ratings, bool) or ratings <= 0:
                continue  # no backlog, or not a count (the wire check refuses such a status)
            oldest = backlog.get("oldest_at") if isinstance(backlog, dict) else None
            out.append(KioskBacklog(kiosk, state, ratings, oldest if _is_time(oldest) else None, received_at))
        return out

    def expire_quarantine(self, *, older_than: str, max_bytes: int) -> dict[tuple[str, str], int]:
        """Remove entries received before ``older_than``, then the oldest until the payloads fit in
        ``max_bytes``; what is removed is counted per reason, never forgotten."""
        dropped: dict[tuple[str, str], int] = defaultdict(int)
        with self.transaction():
            for reason, n in self.conn.execute(
                "SELECT reason, COUNT(*) FROM quarantine WHERE received_at < ? GROUP BY reason", (older_than,)
            ).fetchall():
                dropped[(reason, "expired")] += n
            self.conn.execute("DELETE FROM quarantine WHERE received_at < ?", (older_than,))
            total = int(self.conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM quarantine").fetchone()[0])
            if total > max_bytes:
                excess = total - max_bytes
                doomed: list[tuple[int, str]] = []
                for entry_id, reason, nbytes in self.conn.execute(
                    "SELECT id, reason, bytes FROM quarantine ORDER BY id"
                ):
                    if excess <= 0:
                        break
                    doomed.append((entry_id, reason))
                    excess -= nbytes or 0
                for _, reason in doomed:
                    dropped[(reason, "over_quota")] += 1
                self.conn.executemany("DELETE FROM quarantine WHERE id=?", [(i,) for i, _ in doomed])
            at = now_text()
            self.conn.executemany(
                "INSERT INTO quarantine_dropped VALUES (?,?,?,?) ON CONFLICT (reason, why)"
                " DO UPDATE SET n = n + excluded.n, last_at = excluded.last_at",
                [(reason, why, n, at) for (reason, why), n in dropped.items()],
            )
        return dict(dropped)

    def quarantine_stats(self) -> QuarantineStats:
        entries, nbytes = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM quarantine").fetchone()
        dropped = {(r, w): n for r, w, n in self.conn.execute("SELECT reason, why, n FROM quarantine_dropped")}
        return QuarantineStats(int(entries), int(nbytes), dropped)

    def purge_snapshots(self, older_than: str) -> list[str]:
        """Forget the pictures received before ``older_than``; returns the files no rating needs any
        more. Files are content-addressed: one shared by a newer rating (the same bytes) stays."""
        with self.transaction():
            rows = self.conn.execute(
                "SELECT rating_id, path FROM snapshots WHERE received_at < ?", (older_than,)
            ).fetchall()
            self.conn.executemany("DELETE FROM snapshots WHERE rating_id=?", [(r[0],) for r in rows])
            paths = sorted({r[1] for r in rows})
            still_needed = {
                row[0]
                for chunk in chunks(paths, 500)
                for row in self.conn.execute(
                    f"SELECT DISTINCT path FROM snapshots WHERE path IN ({','.join('?' * len(chunk))})", chunk
                )
            }
            return self._drop_pictures([p for p in paths if p not in still_needed])

    def keep_picture(self, root: Path, digest: str, data: bytes) -> str:
        """Keep a checked picture; its reference for ``add_snapshot``. SQLite: a content-addressed
        file under ``root`` (one file for the same bytes sent twice)."""
        path = root / digest[:2] / digest[2:4] / f"{digest}.jpg"
        if not path.exists():
            write_atomically(path, data)
        return str(path)

    # --- monthly mail: what was sent, and what came in after it --------------------------------

    def late_arrivals(self, counters: Sequence[str], month: str, after: str) -> dict[int, int]:
        """Ratings (not flagged presses) of local month ``month`` at these counters that arrived
        after ``after`` (when the month's report was sent), per score."""
        return {
            score: n
            for score, n in self.conn.execute(
                "SELECT score, COUNT(*) FROM after_month WHERE month = ? AND received_at > ? AND flagged = 0"
                " AND counter IN (SELECT value FROM json_each(?)) GROUP BY score",
                (month, after, json.dumps(list(counters))),
            )
        }

    # --- rows and figures the inspectors' pages read ------------------------------------------
    # Figures are counted in SQL over the whole period; only the rows a page shows are fetched.

    def ratings_page(
        self, counters: Sequence[str], start: str, end: str, *, limit: int, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Ratings and flagged presses at these counters with pressed_at in [start, end), newest
        first, one page of them, with whether a snapshot is stored and who reviewed them."""
        rows = self.conn.execute(
            f"SELECT {_PAGE_COLUMNS}, NULL FROM ratings r {_PAGE_JOINS}"
            " WHERE r.counter IN (SELECT value FROM json_each(?)) AND r.pressed_at >= ? AND r.pressed_at < ?"
            " ORDER BY r.pressed_at DESC, r.id LIMIT ? OFFSET ?",
            (json.dumps(list(counters)), start, end, limit, offset),
        )
        return [_page_row(row) for row in rows]

    def heat_counts(
        self, counters: Sequence[str], start: str, end: str, *, tz: ZoneInfo
    ) -> list[tuple[int, int, int, int]]:
        """Accepted ratings at these counters pressed in [start, end) as (local weekday with
        0 = Monday, local hour, count, of them "Không hài lòng")."""
        shift, shift_args = _local_shift(start, end, tz)
        out = []
        for weekday, hour, n, unhappy in self.conn.execute(
            f"SELECT CAST(strftime('%w', r.pressed_at, {shift}) AS INTEGER),"
            f" CAST(strftime('%H', r.pressed_at, {shift}) AS INTEGER), COUNT(*), SUM(r.score = 1) FROM ratings r"
            " WHERE r.counter IN (SELECT value FROM json_each(?)) AND r.pressed_at >= ? AND r.pressed_at < ?"
            " AND r.flag IS NULL GROUP BY 1, 2",
            (*shift_args, *shift_args, json.dumps(list(counters)), start, end),
        ):
            out.append(((weekday + 6) % 7, hour, n, unhappy))
        return out

    def review_queue(
        self,
        counters: Sequence[str],
        start: str,
        end: str,
        *,
        tz: ZoneInfo,
        office_days: Sequence[int],
        office_spans: Sequence[tuple[time, time]],
        pending_only: bool,
        limit: int,
        offset: int = 0,
        reasons: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Presses an inspector should look at (flagged, clock unsynced, or outside office hours),
        newest first, one page of them; ``after_hours`` says which were outside office hours."""
        sql, args = _review_sql(counters, start, end, tz, office_days, office_spans, pending_only, reasons)
        return [
            _page_row(row)
            for row in self.conn.execute(f"{sql} ORDER BY pressed_at DESC, id LIMIT ? OFFSET ?", (*args, limit, offset))
        ]

    def review_queue_size(
        self,
        counters: Sequence[str],
        start: str,
        end: str,
        *,
        tz: ZoneInfo,
        office_days: Sequence[int],
        office_spans: Sequence[tuple[time, time]],
        reasons: Sequence[str] | None = None,
    ) -> tuple[int, int]:
        """(presses in the review queue, of which not yet reviewed), counted in full."""
        sql, args = _review_sql(counters, start, end, tz, office_days, office_spans, False, reasons)
        total, pending = self.conn.execute(
            f"SELECT COUNT(*), COUNT(*) - COUNT(reviewed_by) FROM ({sql})", args
        ).fetchone()
        return int(total), int(pending)


_PAGE_COLUMNS = (
    "r.id, r.kiosk, r.counter, r.seq, r.score, r.flag, r.pressed_at, r.clock, r.snapshot_error,"
    " s.path IS NOT NULL AS has_snapshot, v.username AS reviewed_by, v.comment AS review_comment,"
    " v.at AS reviewed_at"
)
_PAGE_JOINS = "LEFT JOIN snapshots s ON s.rating_id = r.id LEFT JOIN reviews v ON v.rating_id = r.id"
_PAGE_NAMES = (
    "id",
    "kiosk",
    "counter",
    "seq",
    "score",
    "flag",
    "pressed_at",
    "clock",
    "snapshot_error",
    "has_snapshot",
    "reviewed_by",
    "review_comment",
    "reviewed_at",
    "after_hours",
)


def _page_row(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_PAGE_NAMES, row, strict=True))
    out["has_snapshot"] = bool(out["has_snapshot"])
    out["after_hours"] = None if out["after_hours"] is None else bool(out["after_hours"])
    return out


def _is_time(value: Any) -> bool:
    try:
        wire.parse_time(value)
    except (wire.WireError, ValueError, TypeError):
        return False
    return True


def utc_offsets(start: str, end: str, tz: ZoneInfo) -> list[tuple[str, int]]:
    """The UTC offsets of ``tz`` (minutes) in force over [start, end): (from, minutes) pairs, the
    first from ``start``. A change is placed on the first whole UTC hour at or after it."""

    def minutes(moment: datetime) -> int:
        offset = moment.astimezone(tz).utcoffset()
        return int(offset.total_seconds() // 60) if offset is not None else 0

    t, until = wire.parse_time(start), wire.parse_time(end)
    out = [(start, minutes(t))]
    while t < until:
        step = min(t + timedelta(days=1), until)
        if minutes(step) != out[-1][1]:
            hour = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            while minutes(hour) == out[-1][1]:
                hour += timedelta(hours=1)
            out.append((wire.format_time(hour), minutes(hour)))
        t = step
    return out


def _local_shift(start: str, end: str, tz: ZoneInfo) -> tuple[str, list[str]]:
    """An SQL date-function modifier (and its arguments) that turns ``r.pressed_at`` into local time."""
    offsets = utc_offsets(start, end, tz)
    if len(offsets) == 1:
        return "?", [f"{offsets[0][1]:+d} minutes"]
    sql, args = "(CASE", []
    for since, minutes in reversed(offsets[1:]):
        sql += " WHEN r.pressed_at >= ? THEN ?"
        args += [since, f"{minutes:+d} minutes"]
    return sql + " ELSE ? END)", [*args, f"{offsets[0][1]:+d} minutes"]


def _review_sql(
    counters: Sequence[str],
    start: str,
    end: str,
    tz: ZoneInfo,
    office_days: Sequence[int],
    office_spans: Sequence[tuple[time, time]],
    pending_only: bool,
    reasons: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    shift, shift_args = _local_shift(start, end, tz)
    # Local weekday (SQLite: 0 = Sunday) and time of day, as one text: "1" + "07:45:10.250".
    days = ",".join("?" * len(office_days)) or "NULL"
    spans = " OR ".join("(substr(lt, 2) >= ? AND substr(lt, 2) < ?)" for _ in office_spans) or "0"
    span_args = [f"{t:%H:%M:%S}.000" for pair in office_spans for t in pair]
    sql = (
        f"SELECT * FROM (SELECT {_PAGE_COLUMNS}, NOT (substr(lt, 1, 1) IN ({days}) AND ({spans})) AS after_hours"
        f" FROM (SELECT r.*, strftime('%w%H:%M:%f', r.pressed_at, {shift}) AS lt FROM ratings r"
        "  WHERE r.counter IN (SELECT value FROM json_each(?)) AND r.pressed_at >= ? AND r.pressed_at < ?) r"
        f" {_PAGE_JOINS}) WHERE {review_condition(reasons)}" + (" AND reviewed_by IS NULL" if pending_only else "")
    )
    args = [*[str((d + 1) % 7) for d in office_days], *span_args, *shift_args, json.dumps(list(counters)), start, end]
    return sql, args


class StoreUnreachable(ConfigError):
    """The configured store does not answer (a wrong address, a database that does not exist)."""


def open_store(url: str) -> SqliteStore | PostgresStore:
    """The store of a URL: SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://…``), both
    with every method the collector uses."""
    if url.startswith("sqlite:///"):
        return SqliteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg

        from collector.pgstore import PostgresStore

        try:
            return PostgresStore(url)
        except psycopg.OperationalError as exc:
            where = url.split("@")[-1]
            raise StoreUnreachable(f"cannot reach the PostgreSQL store at {where}: {str(exc).strip()[:300]}") from None
    raise ConfigError(f"[store] url must be sqlite:///path.db or postgresql://…, not {url.split(':', 1)[0]}")


_ROW_MARKS = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def chunks_of(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def now_text() -> str:
    return wire.format_time(datetime.now().astimezone())
