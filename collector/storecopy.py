"""`collector store copy`: move a unit from the embedded SQLite store to PostgreSQL (or back).

Both stores are brought to the same schema version first; then every table is copied row by row
in one transaction on the target, and checked: the same number of rows in every table and the
same roll-up totals per counter. The target must be empty — a copy never merges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import CollectorError

BATCH_ROWS = 5000


class CopyError(CollectorError, RuntimeError):
    """The copy cannot be made, or the copy does not match its source."""


@dataclass(frozen=True)
class CopyReport:
    tables: dict[str, int]  # rows copied per table
    rollup_total: int
    pictures_moved: int = 0  # picture files put into a PostgreSQL target's database
    pictures_missing: int = 0  # snapshot rows whose file was not found (left as they were)


def _open(url: str) -> Any:
    """The store for a URL (migrated to the current schema) — the copy reads and writes its conn."""
    if url.startswith("sqlite:///"):
        from collector.store import SqliteStore

        return SqliteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from collector.pgstore import PostgresStore

        return PostgresStore(url)
    raise CopyError(f"{url!r} is neither sqlite:///path.db nor postgresql://…")


def _is_pg(store: Any) -> bool:
    return type(store).__name__ == "PostgresStore"


def _tables(store: Any) -> list[str]:
    if _is_pg(store):
        rows = store.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'"
        ).fetchall()
    else:
        rows = store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return sorted(r[0] for r in rows)


def _columns(store: Any, table: str) -> list[str]:
    if _is_pg(store):
        rows = store.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
            " ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [r[0] for r in rows]
    return [r[1] for r in store.conn.execute(f'PRAGMA table_info("{table}")').fetchall()]


def _count(store: Any, table: str) -> int:
    return int(store.conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def _rows(store: Any, table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    names = ", ".join(f'"{c}"' for c in columns)
    if _is_pg(store):
        # A server-side cursor (inside a transaction): ten million ratings never sit in memory at once.
        with store.conn.transaction(), store.conn.cursor(name=f"copy_{table}") as cur:
            cur.execute(f'SELECT {names} FROM "{table}"')
            while batch := cur.fetchmany(BATCH_ROWS):
                yield [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in batch]
    else:
        cur = store.conn.execute(f'SELECT {names} FROM "{table}"')
        while batch := cur.fetchmany(BATCH_ROWS):
            yield [tuple(row) for row in batch]


def _rollups(store: Any) -> dict[str, int]:
    return {c: int(n) for c, n in store.conn.execute("SELECT counter, SUM(n) FROM daily GROUP BY counter").fetchall()}


def copy_store(source_url: str, target_url: str) -> CopyReport:
    source, target = _open(source_url), _open(target_url)
    try:
        tables = _tables(source)
        missing = sorted(set(tables) - set(_tables(target)))
        if missing:
            raise CopyError(f"the target has no table(s) {', '.join(missing)}: is it an older collector's schema?")
        full = [t for t in tables if _count(target, t) and t not in ("schema_version",)]
        if full:
            raise CopyError(f"the target is not empty ({', '.join(full)}): copy into a new, empty store")
        mark = "%s" if _is_pg(target) else "?"
        copied: dict[str, int] = {}
        with target.transaction():
            for table in tables:
                columns = [c for c in _columns(source, table) if c in set(_columns(target, table))]
                names = ", ".join(f'"{c}"' for c in columns)
                insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join([mark] * len(columns))})'
                copied[table] = 0
                for batch in _rows(source, table, columns):
                    if _is_pg(target):
                        batch = [tuple(_pg_value(v) for v in row) for row in batch]
                        with target.conn.cursor() as cur:
                            cur.executemany(insert, batch)
                    else:
                        target.conn.executemany(insert, batch)
                    copied[table] += len(batch)
            moved = lost = 0
            if _is_pg(target):
                _reset_sequences(target)
                moved, lost = _pictures_into_database(target)
        for table in tables:
            expected = _count(source, table) + (moved if table == "pictures" else 0)
            if _count(target, table) != expected:
                raise CopyError(f"{table}: {_count(target, table)} rows in the copy, {expected} expected")
        if _rollups(target) != _rollups(source):
            raise CopyError("roll-up totals per counter differ between source and copy")
        if _is_pg(target):  # the planner's statistics now, not when autovacuum next gets round to it
            target.conn.execute("ANALYZE")
        return CopyReport(copied, sum(_rollups(target).values()), moved, lost)
    finally:
        source.close()
        target.close()


def _pictures_into_database(target: Any) -> tuple[int, int]:
    """On PostgreSQL pictures live in the database, where every collector sees them: read each
    picture file the copied snapshot rows name and keep it there. A file that is gone (purged, or
    the copy runs on another machine) leaves its row as it was; the count is reported."""
    from collector.sqlshared import PICTURE_IN_DB

    moved = missing = 0
    rows = target.conn.execute(
        "SELECT DISTINCT path, sha256 FROM snapshots WHERE path NOT LIKE %s", (PICTURE_IN_DB + "%",)
    ).fetchall()
    for path, sha256 in rows:
        data = target.picture(path)
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            missing += 1
            continue
        ref = target.keep_picture(Path("."), sha256, data)
        target.conn.execute("UPDATE snapshots SET path = %s WHERE path = %s", (ref, path))
        moved += 1
    return moved, missing


def _pg_value(value: Any) -> Any:
    # PostgreSQL text holds no NUL character; SQLite text can.
    return value.replace("\x00", "\\x00") if isinstance(value, str) and "\x00" in value else value


def _reset_sequences(store: Any) -> None:
    """Ids copied from SQLite: the BIGSERIAL sequences must go on after the highest one."""
    for table, column, sequence in store.conn.execute(
        "SELECT c.table_name, c.column_name, pg_get_serial_sequence(quote_ident(c.table_name), c.column_name)"
        " FROM information_schema.columns c WHERE c.table_schema = 'public' AND c.column_default LIKE 'nextval(%%'"
    ).fetchall():
        if sequence:
            store.conn.execute(
                f'SELECT setval(%s, COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)', (sequence,)
            )
