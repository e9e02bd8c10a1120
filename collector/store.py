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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlite_utils

from collector.errors import ConfigError
from collector.registry import Counter, KioskEntry, Registry, Unit
from kiosk import wire
from kiosk.sqlite import Migration, migrate, open_database, transaction


@dataclass(frozen=True)
class Count:
    """How many ratings (or flagged presses) of one score, for a counter and/or a period."""

    counter: str
    period: str  # a day (YYYY-MM-DD), a month (YYYY-MM), or "" for the whole range
    score: int
    flagged: bool
    n: int


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

    @property
    def possibly_missing(self) -> int:
        return (self.max_seq - min(self.min_seq, 1) + 1) - self.count


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
    def add_quarantine(self, topic: str, payload: bytes, reason: str, detail: str, received_at: str) -> int: ...
    def snapshot_expected(self, rating_id: str) -> tuple[str, str | None, int | None] | None: ...
    def has_snapshot(self, rating_id: str) -> bool: ...
    def add_snapshot(self, rating_id: str, sha256: str, path: str, nbytes: int, received_at: str) -> None: ...
    def record_status(self, kiosk: str, doc: dict[str, Any], received_at: str) -> None: ...
    def counts(self, counters: Sequence[str], day_from: date, day_to: date, *, by: str) -> list[Count]: ...
    def kiosk_statuses(self) -> dict[str, dict[str, Any]]: ...
    def installs(self) -> list[InstallSeq]: ...
    def quarantined(self, *, include_replayed: bool = False, limit: int = 1000) -> list[QuarantineEntry]: ...
    def mark_replayed(self, entry_id: int, outcome: str, at: str) -> None: ...
    def purge_snapshots(self, older_than: str) -> list[str]: ...
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


MIGRATIONS: list[Migration] = [_m1_initial, _m2_monthly, _m3_people]


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


class SqliteStore:
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

    # --- registry --------------------------------------------------------------

    def replace_registry(self, registry: Registry) -> None:
        with self.transaction():
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

    def load_registry(self) -> Registry:
        return Registry.build(
            [Unit(*row) for row in self.conn.execute("SELECT id, name, level, parent FROM units")],
            [Counter(*row) for row in self.conn.execute("SELECT id, unit, name FROM counters")],
            [KioskEntry(*row) for row in self.conn.execute("SELECT id, counter FROM kiosks")],
        )

    # --- ingest (call inside transaction()) ----------------------------------------

    def add_ratings(
        self,
        kiosk: str,
        ratings: Sequence[wire.Rating],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]:
        """Store the ratings not stored yet; returns (new ids, duplicate ids). Call inside transaction()."""
        known: set[str] = set()
        for chunk in chunks([r.id for r in ratings], 500):
            marks = ",".join("?" * len(chunk))
            known.update(row[0] for row in self.conn.execute(f"SELECT id FROM ratings WHERE id IN ({marks})", chunk))
        fresh: dict[str, wire.Rating] = {}
        duplicates: list[str] = []
        for r in ratings:
            if r.id in known or r.id in fresh:
                duplicates.append(r.id)
            else:
                fresh[r.id] = r
        rows = []
        rollup: dict[tuple[str, str, int, int], int] = defaultdict(int)
        installs: dict[str, list[int]] = {}
        for r in fresh.values():
            day = local_day(r.pressed_at, tz)
            snap = r.snapshot
            rows.append(
                (
                    r.id,
                    kiosk,
                    r.install,
                    r.seq,
                    r.counter,
                    unit_of[r.counter],
                    r.score,
                    r.flag,
                    r.pressed_at,
                    day,
                    r.clock,
                    snap.sha256 if snap else None,
                    snap.bytes if snap else None,
                    r.snapshot_error,
                    r.fw,
                    received_at,
                )
            )
            rollup[(r.counter, day, r.score, 1 if r.flag else 0)] += 1
            seen = installs.setdefault(r.install, [0, r.seq, r.seq])
            seen[0] += 1
            seen[1] = min(seen[1], r.seq)
            seen[2] = max(seen[2], r.seq)
        self.conn.executemany("INSERT INTO ratings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        self.conn.executemany(
            "INSERT INTO daily VALUES (?,?,?,?,?) ON CONFLICT (counter, day, score, flagged)"
            " DO UPDATE SET n = n + excluded.n",
            [(*key, n) for key, n in rollup.items()],
        )
        self.conn.executemany(
            "INSERT INTO monthly VALUES (?,?,?,?,?) ON CONFLICT (counter, month, score, flagged)"
            " DO UPDATE SET n = n + excluded.n",
            [(counter, day[:7], score, flagged, n) for (counter, day, score, flagged), n in rollup.items()],
        )
        self.conn.executemany(
            "INSERT INTO installs VALUES (?,?,?,?,?,?) ON CONFLICT (kiosk, install) DO UPDATE SET"
            " count = count + excluded.count, min_seq = MIN(min_seq, excluded.min_seq),"
            " max_seq = MAX(max_seq, excluded.max_seq), last_received_at = excluded.last_received_at",
            [(kiosk, install, c, lo, hi, received_at) for install, (c, lo, hi) in installs.items()],
        )
        return list(fresh), duplicates

    def add_quarantine(self, topic: str, payload: bytes, reason: str, detail: str, received_at: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO quarantine(topic, payload, received_at, reason, detail) VALUES (?,?,?,?,?)",
            (topic, payload, received_at, reason, detail[:1000]),
        )
        return int(cur.lastrowid or 0)

    def snapshot_expected(self, rating_id: str) -> tuple[str, str | None, int | None] | None:
        """(kiosk, sha256, bytes) the rating announced, or None when there is no such rating."""
        row = self.conn.execute(
            "SELECT kiosk, snapshot_sha256, snapshot_bytes FROM ratings WHERE id=?", (rating_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def has_snapshot(self, rating_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM snapshots WHERE rating_id=?", (rating_id,)).fetchone() is not None

    def add_snapshot(self, rating_id: str, sha256: str, path: str, nbytes: int, received_at: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO snapshots VALUES (?,?,?,?,?)",
            (rating_id, sha256, path, nbytes, received_at),
        )

    def snapshot_path(self, rating_id: str) -> str | None:
        row = self.conn.execute("SELECT path FROM snapshots WHERE rating_id=?", (rating_id,)).fetchone()
        return None if row is None else str(row[0])

    def record_status(self, kiosk: str, doc: dict[str, Any], received_at: str) -> None:
        row = self.conn.execute("SELECT state FROM kiosk_status WHERE kiosk=?", (kiosk,)).fetchone()
        state = str(doc["state"])
        if row is None or row[0] != state:
            self.conn.execute(
                "INSERT INTO kiosk_transitions(kiosk, state, at) VALUES (?,?,?)",
                (kiosk, state, doc.get("at") or received_at),
            )
        if row is not None:
            old = json.loads(self.conn.execute("SELECT doc FROM kiosk_status WHERE kiosk=?", (kiosk,)).fetchone()[0])
            if state == "offline":
                # An offline will carries no details: keep the last online status's details beside it.
                doc = {**old, **doc}
            elif old.get("selftest") and not doc.get("selftest"):
                doc = {**doc, "selftest": old["selftest"]}  # "installed and tested at …" stays
        self.conn.execute(
            "INSERT INTO kiosk_status VALUES (?,?,?,?) ON CONFLICT (kiosk) DO UPDATE SET"
            " state=excluded.state, doc=excluded.doc, received_at=excluded.received_at",
            (kiosk, state, json.dumps(doc, ensure_ascii=False), received_at),
        )

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
        summed: dict[tuple[str, str, int, bool], int] = defaultdict(int)
        for table, period, low, high in parts:
            column = "day" if table == "daily" else "month"
            for chunk in chunks(list(counters), 500):
                marks = ",".join("?" * len(chunk))
                for c, p, s, f, n in self.conn.execute(
                    f"SELECT {key}, {period}, score, flagged, SUM(n) FROM {table}"
                    f" WHERE counter IN ({marks}) AND {column} BETWEEN ? AND ?"
                    f" GROUP BY 1, 2, score, flagged",
                    (*chunk, low, high),
                ):
                    summed[(c, p, s, bool(f))] += n
        return [Count(c, p, s, f, n) for (c, p, s, f), n in summed.items()]

    def kiosk_statuses(self) -> dict[str, dict[str, Any]]:
        out = {}
        for kiosk, state, doc, received_at in self.conn.execute(
            "SELECT kiosk, state, doc, received_at FROM kiosk_status"
        ):
            out[kiosk] = {**json.loads(doc), "state": state, "received_at": received_at}
        return out

    def transitions(self, kiosk: str) -> list[tuple[str, str]]:
        return [
            (s, a)
            for s, a in self.conn.execute("SELECT state, at FROM kiosk_transitions WHERE kiosk=? ORDER BY id", (kiosk,))
        ]

    def installs(self) -> list[InstallSeq]:
        return [
            InstallSeq(*row)
            for row in self.conn.execute(
                "SELECT kiosk, install, count, min_seq, max_seq, last_received_at FROM installs ORDER BY kiosk"
            )
        ]

    def quarantined(self, *, include_replayed: bool = False, limit: int = 1000) -> list[QuarantineEntry]:
        where = "" if include_replayed else "WHERE replayed_at IS NULL"
        return [
            QuarantineEntry(*row)
            for row in self.conn.execute(
                f"SELECT id, topic, payload, received_at, reason, detail, replayed_at, replay_outcome"
                f" FROM quarantine {where} ORDER BY id LIMIT ?",
                (limit,),
            )
        ]

    def mark_replayed(self, entry_id: int, outcome: str, at: str) -> None:
        self.conn.execute("UPDATE quarantine SET replayed_at=?, replay_outcome=? WHERE id=?", (at, outcome, entry_id))

    def purge_snapshots(self, older_than: str) -> list[str]:
        with self.transaction():
            rows = self.conn.execute(
                "SELECT rating_id, path FROM snapshots WHERE received_at < ?", (older_than,)
            ).fetchall()
            self.conn.executemany("DELETE FROM snapshots WHERE rating_id=?", [(r[0],) for r in rows])
        return [r[1] for r in rows]

    def rating_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])


def open_store(url: str) -> SqliteStore:
    if url.startswith("sqlite:///"):
        return SqliteStore.from_url(url)
    raise ConfigError(
        f"[store] url: {url.split(':', 1)[0]} stores are not implemented yet; use sqlite:///path.db "
        "(PostgreSQL is planned)"
    )


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def now_text() -> str:
    return wire.format_time(datetime.now().astimezone())
