"""SQLite plumbing shared by the kiosk outbox and the collector store.

Connections run in autocommit mode and every write goes through :func:`transaction`
(``BEGIN IMMEDIATE`` … ``COMMIT``), so nothing commits half a change behind our back.
Migrations are numbered functions, each run in its own transaction, tracked in
``PRAGMA user_version``.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

Migration = Callable[[sqlite_utils.Database], None]


def open_database(path: Path, *, synchronous: str = "FULL") -> sqlite_utils.Database:
    """WAL, the given ``synchronous`` level, a 10 s busy timeout, foreign keys on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, …).
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_savepoints = itertools.count(1)


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Inside :func:`transaction`: a part that can fail alone. On an error only this part is rolled
    back and the error goes on; the enclosing transaction stays open for the rest. If SQLite has
    already rolled the whole transaction back (disk full, I/O error), there is nothing to undo
    here and the enclosing ``transaction`` sees the error."""
    name = f"sp{next(_savepoints)}"
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def migrate(db: sqlite_utils.Database, migrations: Sequence[Migration], *, name: str) -> None:
    """Run the steps not yet run. The version is read inside each step's write transaction, so two
    processes opening one new database at once (a web and an ingest collector started together)
    never run a step twice: the second waits for the first's lock and then sees its version. An
    up-to-date database (every open after the first) takes no write lock."""
    found = db.conn.execute("PRAGMA user_version").fetchone()[0]
    if found > len(migrations):
        # A newer release migrated it and this one was switched back to (kiosk/update.py): steps
        # only ever add tables and columns, so this version reads what it knows and goes on.
        log.info("%s is at schema %d, newer than this version's %d; using it as it is", name, found, len(migrations))
    if found >= len(migrations):
        return
    while True:
        with transaction(db.conn):
            version = db.conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= len(migrations):
                return
            migrations[version](db)
            db.conn.execute(f"PRAGMA user_version={version + 1}")
        log.info("%s migrated to schema %d", name, version + 1)
