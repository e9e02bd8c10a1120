"""Where ratings live: the ``RatingStore`` port and ``SqliteStore``, the embedded default.

Each rating id is stored once (a duplicate is recognised, not stored again). Daily roll-ups per
counter, day and score are updated in the same transaction as the insert, so reports read a few
thousand roll-up rows instead of millions of ratings.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlite_utils

from collector.registry import Counter, KioskEntry, Registry, Unit
from kiosk import wire
from kiosk.sqlite import Migration, migrate, open_database, transaction


@dataclass(frozen=True)
class DailyCount:
    counter: str
    day: str
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
    def add_quarantine(
        self, topic: str, payload: bytes, reason: str, detail: str, received_at: str
    ) -> int: ...
    def snapshot_expected(self, rating_id: str) -> tuple[str, str | None, int | None] | None: ...
    def has_snapshot(self, rating_id: str) -> bool: ...
    def add_snapshot(self, rating_id: str, sha256: str, path: str, nbytes: int, received_at: str) -> None: ...
    def record_status(self, kiosk: str, doc: dict[str, Any], received_at: str) -> None: ...
    def daily_counts(self, counters: Sequence[str], day_from: date, day_to: date) -> list[DailyCount]: ...
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


MIGRATIONS: list[Migration] = [_m1_initial]


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
        new: list[str] = []
        duplicates: list[str] = []
        for r in ratings:
            day = local_day(r.pressed_at, tz)
            inserted = self.conn.execute(
                "INSERT OR IGNORE INTO ratings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    r.snapshot.sha256 if r.snapshot else None,
                    r.snapshot.bytes if r.snapshot else None,
                    r.snapshot_error,
                    r.fw,
                    received_at,
                ),
            ).rowcount
            if not inserted:
                duplicates.append(r.id)
                continue
            new.append(r.id)
            self.conn.execute(
                "INSERT INTO daily VALUES (?,?,?,?,1) ON CONFLICT (counter, day, score, flagged)"
                " DO UPDATE SET n = n + 1",
                (r.counter, day, r.score, 1 if r.flag else 0),
            )
            self.conn.execute(
                "INSERT INTO installs VALUES (?,?,1,?,?,?) ON CONFLICT (kiosk, install) DO UPDATE SET"
                " count = count + 1, min_seq = MIN(min_seq, excluded.min_seq),"
                " max_seq = MAX(max_seq, excluded.max_seq), last_received_at = excluded.last_received_at",
                (kiosk, r.install, r.seq, r.seq, received_at),
            )
        return new, duplicates

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
        return (
            self.conn.execute("SELECT 1 FROM snapshots WHERE rating_id=?", (rating_id,)).fetchone()
            is not None
        )

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
        # An offline will carries no details: keep the last online status's details beside it.
        if state == "offline" and row is not None:
            old = json.loads(
                self.conn.execute("SELECT doc FROM kiosk_status WHERE kiosk=?", (kiosk,)).fetchone()[0]
            )
            doc = {**old, **doc}
        self.conn.execute(
            "INSERT INTO kiosk_status VALUES (?,?,?,?) ON CONFLICT (kiosk) DO UPDATE SET"
            " state=excluded.state, doc=excluded.doc, received_at=excluded.received_at",
            (kiosk, state, json.dumps(doc, ensure_ascii=False), received_at),
        )

    # --- reading -----------------------------------------------------------------

    def daily_counts(self, counters: Sequence[str], day_from: date, day_to: date) -> list[DailyCount]:
        out: list[DailyCount] = []
        for chunk in _chunks(list(counters), 500):
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT counter, day, score, flagged, n FROM daily WHERE counter IN ({marks})"
                " AND day BETWEEN ? AND ?",
                (*chunk, day_from.isoformat(), day_to.isoformat()),
            ).fetchall()
            out.extend(DailyCount(c, d, s, bool(f), n) for c, d, s, f, n in rows)
        return out

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
            for s, a in self.conn.execute(
                "SELECT state, at FROM kiosk_transitions WHERE kiosk=? ORDER BY id", (kiosk,)
            )
        ]

    def installs(self) -> list[InstallSeq]:
        return [
            InstallSeq(*row)
            for row in self.conn.execute(
                "SELECT kiosk, install, count, min_seq, max_seq, last_received_at FROM installs"
                " ORDER BY kiosk"
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
        self.conn.execute(
            "UPDATE quarantine SET replayed_at=?, replay_outcome=? WHERE id=?", (at, outcome, entry_id)
        )

    def purge_snapshots(self, older_than: str) -> list[str]:
        with self.transaction():
            rows = self.conn.execute(
                "SELECT rating_id, path FROM snapshots WHERE received_at < ?", (older_than,)
            ).fetchall()
            self.conn.executemany("DELETE FROM snapshots WHERE rating_id=?", [(r[0],) for r in rows])
        return [r[1] for r in rows]

    def rating_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])

    def ratings_of_counter(self, counter: str, *, limit: int = 100) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT id, kiosk, seq, score, flag, pressed_at, clock, snapshot_sha256 FROM ratings"
            " WHERE counter=? ORDER BY pressed_at DESC LIMIT ?",
            (counter, limit),
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]


def open_store(url: str) -> SqliteStore:
    if url.startswith("sqlite:///"):
        return SqliteStore.from_url(url)
    raise NotImplementedError(
        f"store {url.split(':', 1)[0]} is not implemented yet; use sqlite:///path.db (PostgreSQL is planned)"
    )


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def now_text() -> str:
    return wire.format_time(datetime.now().astimezone())
