"""The outbox: every press is committed here before the panel says "thank you".

SQLite in WAL mode with ``synchronous=FULL``: a commit that returned survives a power cut.
Rows leave only after the collector acked them and a retention period passed. Each thread
opens its own :class:`SqliteOutbox` on the same file (SQLite connections are per thread).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from kiosk import ids
from kiosk.errors import OutboxError
from kiosk.sqlite import Migration, migrate, open_database, transaction
from kiosk.wire import Rating, SnapshotRef, format_epoch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPress:
    id: str
    seq: int


@dataclass(frozen=True)
class PendingSnapshot:
    rating_id: str
    path: str
    bytes: int


@dataclass(frozen=True)
class Backlog:
    ratings: int
    snapshots: int
    oldest_epoch: float | None = None  # press time of the oldest rating not yet acked

    @property
    def oldest_at(self) -> str | None:
        """The oldest unacked press as a contract time: the collector's data is complete up to it."""
        return None if self.oldest_epoch is None else format_epoch(self.oldest_epoch)


# --- migrations: numbered, each in its own transaction ---------------------
# Plain DDL: sqlite-utils' table.create() commits on its own, which would split a
# migration across transactions.


def _m1_initial(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute(
        """CREATE TABLE ratings (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            install TEXT NOT NULL,
            counter TEXT NOT NULL,
            score INTEGER NOT NULL,
            flag TEXT,                      -- NULL, lockout, burst
            pressed_epoch REAL NOT NULL,    -- wall clock at the press (or corrected)
            clock TEXT NOT NULL,            -- synced, unsynced, corrected
            boot_id TEXT NOT NULL,
            since_boot_s REAL NOT NULL,     -- boot-time clock at the press, for correction
            snapshot_state TEXT NOT NULL,   -- none, pending, done, error
            snapshot_sha256 TEXT,
            snapshot_bytes INTEGER,
            snapshot_error TEXT,
            fw TEXT NOT NULL,
            acked_epoch REAL
        )"""
    )
    db.execute("CREATE INDEX ratings_unacked ON ratings(acked_epoch, seq)")
    db.execute(
        """CREATE TABLE snapshots (
            rating_id TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            taken_epoch REAL NOT NULL,
            rating_acked INTEGER NOT NULL DEFAULT 0,  -- uploaded only once the collector has the rating
            acked_epoch REAL
        )"""
    )


MIGRATIONS: list[Migration] = [_m1_initial]


class SqliteOutbox:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.db = open_database(self.path)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc} — is the data partition mounted?") from exc
        self._conn = self.db.conn
        migrate(self.db, MIGRATIONS, name=f"outbox {self.path}")
        self.install_id = self._install_id()

    def close(self) -> None:
        self._conn.close()

    # --- schema ------------------------------------------------------------

    def _install_id(self) -> str:
        with self._transaction():
            row = self._conn.execute("SELECT value FROM meta WHERE key='install'").fetchone()
            if row:
                return str(row[0])
            install = ids.new_install_id()
            self._conn.execute("INSERT INTO meta(key, value) VALUES ('install', ?)", (install,))
            self._conn.execute("INSERT INTO meta(key, value) VALUES ('next_seq', '1')")
            self._conn.execute("INSERT INTO meta(key, value) VALUES ('suppressed', '0')")
            log.info("new install id %s", install)
            return install

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn)

    # --- presses -----------------------------------------------------------

    def record_press(
        self,
        *,
        counter: str,
        score: int,
        flag: str | None,
        pressed_epoch: float,
        clock: str,
        boot_id: str,
        since_boot_s: float,
        fw: str,
        snapshot_state: str,
        snapshot_error: str | None = None,
    ) -> StoredPress:
        """Commit one press (rating or flagged). Returns only once it is on disk."""
        rating_id = ids.uuid7(int(pressed_epoch * 1000))
        try:
            with self._transaction():
                seq = int(self._conn.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])
                self._conn.execute("UPDATE meta SET value=? WHERE key='next_seq'", (str(seq + 1),))
                self._conn.execute(
                    "INSERT INTO ratings(seq, id, install, counter, score, flag, pressed_epoch, clock,"
                    " boot_id, since_boot_s, snapshot_state, snapshot_error, fw)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        seq,
                        rating_id,
                        self.install_id,
                        counter,
                        score,
                        flag,
                        pressed_epoch,
                        clock,
                        boot_id,
                        since_boot_s,
                        snapshot_state,
                        snapshot_error,
                        fw,
                    ),
                )
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path} refused the press: {exc}") from exc
        return StoredPress(rating_id, seq)

    def count_suppressed(self, presses: int = 1) -> None:
        with self._transaction():
            self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key='suppressed'", (presses,))

    @property
    def suppressed_presses(self) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE key='suppressed'").fetchone()[0])

    def last_press_epoch(self) -> float | None:
        row = self._conn.execute(
            "SELECT pressed_epoch FROM ratings WHERE flag IS NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else float(row[0])

    # --- snapshots ---------------------------------------------------------

    def attach_snapshot(self, rating_id: str, *, path: str, sha256: str, nbytes: int, taken_epoch: float) -> bool:
        """Link a picture to its rating, unless the rating already gave up waiting."""
        with self._transaction():
            changed = self._conn.execute(
                "UPDATE ratings SET snapshot_state='done', snapshot_sha256=?, snapshot_bytes=?,"
                " snapshot_error=NULL WHERE id=? AND snapshot_state='pending'",
                (sha256, nbytes, rating_id),
            ).rowcount
            if changed:
                self._conn.execute(
                    "INSERT INTO snapshots(rating_id, path, bytes, taken_epoch, rating_acked) VALUES (?,?,?,?,0)",
                    (rating_id, path, nbytes, taken_epoch),
                )
        return bool(changed)

    def fail_snapshot(self, rating_id: str, error: str) -> bool:
        with self._transaction():
            return bool(
                self._conn.execute(
                    "UPDATE ratings SET snapshot_state='error', snapshot_error=?"
                    " WHERE id=? AND snapshot_state='pending'",
                    (error, rating_id),
                ).rowcount
            )

    def expire_pending_snapshots(self, *, boot_id: str, since_boot_s: float, error: str) -> int:
        """Give up on pictures requested before ``since_boot_s`` (or in another boot)."""
        with self._transaction():
            return self._conn.execute(
                "UPDATE ratings SET snapshot_state='error', snapshot_error=?"
                " WHERE snapshot_state='pending' AND (boot_id != ? OR since_boot_s < ?)",
                (error, boot_id, since_boot_s),
            ).rowcount

    def snapshots_to_upload(self, limit: int, *, skip: Iterable[str] = ()) -> list[PendingSnapshot]:
        skipped = set(skip)
        rows = self._conn.execute(
            "SELECT rating_id, path, bytes FROM snapshots WHERE rating_acked=1 AND acked_epoch IS NULL"
            " ORDER BY taken_epoch LIMIT ?",
            (limit + len(skipped),),
        ).fetchall()
        return [PendingSnapshot(*row) for row in rows if row[0] not in skipped][:limit]

    def mark_snapshots_acked(self, rating_ids: Sequence[str], now_epoch: float) -> list[str]:
        """Mark pictures as delivered; returns the paths whose files may now be deleted."""
        paths: list[str] = []
        with self._transaction():
            for rid in rating_ids:
                row = self._conn.execute(
                    "SELECT path FROM snapshots WHERE rating_id=? AND acked_epoch IS NULL", (rid,)
                ).fetchone()
                if row:
                    self._conn.execute("UPDATE snapshots SET acked_epoch=? WHERE rating_id=?", (now_epoch, rid))
                    paths.append(row[0])
        return paths

    def drop_snapshot_files(self, max_bytes: int) -> list[str]:
        """Over the picture budget, give up the oldest undelivered pictures (never ratings)."""
        total = self._conn.execute(
            "SELECT COALESCE(SUM(bytes), 0) FROM snapshots WHERE acked_epoch IS NULL"
        ).fetchone()[0]
        paths: list[str] = []
        if total <= max_bytes:
            return paths
        with self._transaction():
            for rid, path, nbytes in self._conn.execute(
                "SELECT rating_id, path, bytes FROM snapshots WHERE acked_epoch IS NULL ORDER BY taken_epoch"
            ).fetchall():
                if total <= max_bytes:
                    break
                self._conn.execute("DELETE FROM snapshots WHERE rating_id=?", (rid,))
                paths.append(path)
                total -= nbytes
        return paths

    # --- clock -------------------------------------------------------------

    def correct_unsynced(self, *, boot_id: str, wall_minus_boot_s: float) -> int:
        """Presses of this boot made before NTP sync get wall time from the boot clock."""
        with self._transaction():
            return self._conn.execute(
                "UPDATE ratings SET pressed_epoch = since_boot_s + ?, clock='corrected'"
                " WHERE clock='unsynced' AND boot_id=? AND acked_epoch IS NULL",
                (wall_minus_boot_s, boot_id),
            ).rowcount

    # --- publishing --------------------------------------------------------

    def unacked(self, *, after_seq: int, limit: int) -> list[OutboxRow]:
        rows = self._conn.execute(
            f"SELECT {_ROW_COLUMNS} FROM ratings WHERE acked_epoch IS NULL AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [OutboxRow(*row) for row in rows]

    def mark_acked(self, rating_ids: Sequence[str], now_epoch: float) -> int:
        with self._transaction():
            done = 0
            for rid in rating_ids:
                done += self._conn.execute(
                    "UPDATE ratings SET acked_epoch=? WHERE id=? AND acked_epoch IS NULL",
                    (now_epoch, rid),
                ).rowcount
                self._conn.execute("UPDATE snapshots SET rating_acked=1 WHERE rating_id=?", (rid,))
        return done

    def backlog(self) -> Backlog:
        ratings, oldest = self._conn.execute(
            "SELECT COUNT(*), MIN(pressed_epoch) FROM ratings WHERE acked_epoch IS NULL"
        ).fetchone()
        snaps = self._conn.execute("SELECT COUNT(*) FROM snapshots WHERE acked_epoch IS NULL").fetchone()[0]
        return Backlog(ratings, snaps, oldest)

    def prune(self, *, older_than_epoch: float) -> int:
        """Forget what the collector acked before ``older_than_epoch``."""
        with self._transaction():
            gone = self._conn.execute(
                "DELETE FROM ratings WHERE acked_epoch IS NOT NULL AND acked_epoch < ?",
                (older_than_epoch,),
            ).rowcount
            self._conn.execute(
                "DELETE FROM snapshots WHERE acked_epoch IS NOT NULL AND acked_epoch < ?",
                (older_than_epoch,),
            )
        return gone


_ROW_COLUMNS = (
    "seq, id, install, counter, score, flag, pressed_epoch, clock, boot_id, since_boot_s,"
    " snapshot_state, snapshot_sha256, snapshot_bytes, snapshot_error, fw"
)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    id: str
    install: str
    counter: str
    score: int
    flag: str | None
    pressed_epoch: float
    clock: str
    boot_id: str
    since_boot_s: float
    snapshot_state: str
    snapshot_sha256: str | None
    snapshot_bytes: int | None
    snapshot_error: str | None
    fw: str

    def to_rating(self) -> Rating:
        snapshot = None
        if self.snapshot_state == "done" and self.snapshot_sha256:
            snapshot = SnapshotRef(self.snapshot_sha256, int(self.snapshot_bytes or 0))
        return Rating(
            id=self.id,
            install=self.install,
            seq=self.seq,
            counter=self.counter,
            score=self.score,
            pressed_at=format_epoch(self.pressed_epoch),
            clock=self.clock,
            snapshot=snapshot,
            snapshot_error=None if snapshot else self.snapshot_error,
            flag=self.flag,
            fw=self.fw,
        )
