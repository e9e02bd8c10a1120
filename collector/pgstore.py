"""``PostgresStore``: the ratings store on PostgreSQL, for everything beyond one machine.

The same schema versions as the SQLite store (``MIGRATIONS`` here mirrors ``store.MIGRATIONS``
number for number), the same meaning of every method. Times are kept as RFC 3339 text, as on
SQLite, so both compare and group them the same way. One connection per store object, in
autocommit mode; ``transaction()`` opens a transaction and ``savepoint()`` a savepoint inside it.
A lost connection is opened again on the next use.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import ConnectionPool

from collector.registry import Registry
from collector.sqlshared import PICTURE_IN_DB, SharedSql, fresh_ratings, review_condition
from collector.store import (
    _PAGE_COLUMNS,
    _PAGE_JOINS,
    AUDIT_BY_TARGET,
    RELEASE_TABLES,
    Count,
    KioskBacklog,
    QuarantineStats,
    _is_time,
    _page_row,
    _split_range,
    now_text,
)
from kiosk import wire

PgMigration = Callable[[psycopg.Connection[Any]], None]


def _run(*statements: str) -> PgMigration:
    def step(conn: psycopg.Connection[Any]) -> None:
        for sql in statements:
            conn.execute(sql)  # type: ignore[arg-type]

    return step


_m1_initial = _run(
    "CREATE TABLE units (id TEXT PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL, parent TEXT)",
    "CREATE TABLE counters (id TEXT PRIMARY KEY, unit TEXT NOT NULL, name TEXT NOT NULL)",
    "CREATE TABLE kiosks (id TEXT PRIMARY KEY, counter TEXT NOT NULL)",
    """CREATE TABLE ratings (
        id TEXT PRIMARY KEY, kiosk TEXT NOT NULL, install TEXT NOT NULL, seq BIGINT NOT NULL,
        counter TEXT NOT NULL, unit TEXT NOT NULL, score SMALLINT NOT NULL, flag TEXT,
        pressed_at TEXT NOT NULL, local_day TEXT NOT NULL, clock TEXT NOT NULL,
        snapshot_sha256 TEXT, snapshot_bytes INTEGER, snapshot_error TEXT, fw TEXT NOT NULL,
        received_at TEXT NOT NULL)""",
    "CREATE INDEX ratings_counter_day ON ratings(counter, local_day)",
    "CREATE INDEX ratings_kiosk_seq ON ratings(kiosk, install, seq)",
    """CREATE TABLE daily (
        counter TEXT NOT NULL, day TEXT NOT NULL, score SMALLINT NOT NULL, flagged SMALLINT NOT NULL,
        n BIGINT NOT NULL, PRIMARY KEY (counter, day, score, flagged))""",
    """CREATE TABLE installs (
        kiosk TEXT NOT NULL, install TEXT NOT NULL, count BIGINT NOT NULL, min_seq BIGINT NOT NULL,
        max_seq BIGINT NOT NULL, last_received_at TEXT NOT NULL, PRIMARY KEY (kiosk, install))""",
    """CREATE TABLE quarantine (
        id BIGSERIAL PRIMARY KEY, topic TEXT NOT NULL, payload BYTEA NOT NULL,
        received_at TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
        replayed_at TEXT, replay_outcome TEXT)""",
    """CREATE TABLE snapshots (
        rating_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, path TEXT NOT NULL, bytes INTEGER NOT NULL,
        received_at TEXT NOT NULL)""",
    "CREATE INDEX snapshots_received ON snapshots(received_at)",
    """CREATE TABLE kiosk_status (
        kiosk TEXT PRIMARY KEY, state TEXT NOT NULL, doc TEXT NOT NULL, received_at TEXT NOT NULL)""",
    """CREATE TABLE kiosk_transitions (
        id BIGSERIAL PRIMARY KEY, kiosk TEXT NOT NULL, state TEXT NOT NULL, at TEXT NOT NULL)""",
    "CREATE INDEX kiosk_transitions_kiosk ON kiosk_transitions(kiosk, at)",
)

_m2_monthly = _run(
    """CREATE TABLE monthly (
        counter TEXT NOT NULL, month TEXT NOT NULL, score SMALLINT NOT NULL, flagged SMALLINT NOT NULL,
        n BIGINT NOT NULL, PRIMARY KEY (counter, month, score, flagged))""",
    "INSERT INTO monthly SELECT counter, substr(day, 1, 7), score, flagged, SUM(n) FROM daily"
    " GROUP BY counter, substr(day, 1, 7), score, flagged",
)

_m3_people = _run(
    """CREATE TABLE users (
        username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, unit TEXT NOT NULL,
        failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TEXT, created_at TEXT NOT NULL)""",
    """CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL)""",
    """CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, username TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')""",
    "CREATE TABLE officers (id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL)",
    """CREATE TABLE roster (
        id BIGSERIAL PRIMARY KEY, officer TEXT NOT NULL, counter TEXT NOT NULL,
        start_at TEXT NOT NULL, end_at TEXT NOT NULL)""",
    "CREATE INDEX roster_counter ON roster(counter, start_at)",
    "CREATE INDEX ratings_counter_pressed ON ratings(counter, pressed_at)",
    "CREATE INDEX ratings_flagged ON ratings(counter, pressed_at) WHERE flag IS NOT NULL",
    """CREATE TABLE reviews (
        rating_id TEXT PRIMARY KEY, username TEXT NOT NULL, comment TEXT NOT NULL, at TEXT NOT NULL)""",
    "CREATE TABLE alert_rules (unit TEXT PRIMARY KEY, doc TEXT NOT NULL)",
    """CREATE TABLE alerts (
        id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
        unit TEXT NOT NULL, opened_at TEXT NOT NULL, detail TEXT NOT NULL,
        acked_by TEXT, acked_at TEXT, ack_comment TEXT)""",
    "CREATE INDEX alerts_open ON alerts(kind, target) WHERE acked_at IS NULL",
    """CREATE TABLE mail_log (
        unit TEXT NOT NULL, month TEXT NOT NULL, sent_at TEXT NOT NULL, recipients TEXT NOT NULL,
        PRIMARY KEY (unit, month))""",
)

_m4_trust = _run(
    """CREATE TABLE assignments (
        id BIGSERIAL PRIMARY KEY, kiosk TEXT NOT NULL, counter TEXT NOT NULL, since TEXT, until TEXT)""",
    "CREATE INDEX assignments_kiosk ON assignments(kiosk)",
    "INSERT INTO assignments(kiosk, counter, since) SELECT id, counter, NULL FROM kiosks",
    """INSERT INTO assignments(kiosk, counter, since, until)
        SELECT DISTINCT r.kiosk, r.counter, NULL::text,
            to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM ratings r
        WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.kiosk = r.kiosk AND a.counter = r.counter)""",
    "ALTER TABLE quarantine ADD COLUMN kiosk TEXT",
    "ALTER TABLE quarantine ADD COLUMN install TEXT",
    "ALTER TABLE quarantine ADD COLUMN seq BIGINT",
    "ALTER TABLE quarantine ADD COLUMN bytes INTEGER",
    "UPDATE quarantine SET bytes = length(payload)",
    "CREATE INDEX quarantine_install ON quarantine(kiosk, install, seq) WHERE install IS NOT NULL",
    "CREATE INDEX quarantine_received ON quarantine(received_at)",
    """CREATE TABLE quarantine_dropped (
        reason TEXT NOT NULL, why TEXT NOT NULL, n BIGINT NOT NULL, last_at TEXT NOT NULL,
        PRIMARY KEY (reason, why))""",
)

_m5_report_trust = _run(
    "ALTER TABLE daily ADD COLUMN unsynced BIGINT NOT NULL DEFAULT 0",
    "ALTER TABLE monthly ADD COLUMN unsynced BIGINT NOT NULL DEFAULT 0",
    """UPDATE daily SET unsynced = u.n FROM (
        SELECT counter, local_day AS day, score, (flag IS NOT NULL)::int AS flagged, COUNT(*) AS n FROM ratings
        WHERE clock = 'unsynced' GROUP BY 1, 2, 3, 4) AS u
        WHERE daily.counter = u.counter AND daily.day = u.day AND daily.score = u.score
        AND daily.flagged = u.flagged""",
    """UPDATE monthly SET unsynced = u.n FROM (
        SELECT counter, substr(local_day, 1, 7) AS month, score, (flag IS NOT NULL)::int AS flagged, COUNT(*) AS n
        FROM ratings WHERE clock = 'unsynced' GROUP BY 1, 2, 3, 4) AS u
        WHERE monthly.counter = u.counter AND monthly.month = u.month AND monthly.score = u.score
        AND monthly.flagged = u.flagged""",
    """CREATE TABLE after_month (
        rating_id TEXT PRIMARY KEY, counter TEXT NOT NULL, month TEXT NOT NULL, score SMALLINT NOT NULL,
        flagged SMALLINT NOT NULL, received_at TEXT NOT NULL)""",
    "CREATE INDEX after_month_month ON after_month(month, received_at)",
    """INSERT INTO after_month SELECT id, counter, substr(local_day, 1, 7), score, (flag IS NOT NULL)::int,
        received_at FROM ratings WHERE substr(local_day, 1, 7) < substr(received_at, 1, 7)""",
    "CREATE INDEX snapshots_path ON snapshots(path)",
)

_m6_access = _run(
    "ALTER TABLE users ADD COLUMN disabled_at TEXT",
    """CREATE TABLE api_tokens (
        id BIGSERIAL PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
        username TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL,
        last_used_at TEXT, revoked_at TEXT)""",
    "CREATE TABLE login_failures (address TEXT NOT NULL, at TEXT NOT NULL)",
    "CREATE INDEX login_failures_address ON login_failures(address, at)",
)

_m7_pictures = _run("CREATE TABLE pictures (sha256 TEXT PRIMARY KEY, data BYTEA NOT NULL)")

_m8_remote_settings = _run(
    """CREATE TABLE remote_settings (scope TEXT PRIMARY KEY, doc TEXT NOT NULL, revision BIGINT NOT NULL,
        updated_by TEXT NOT NULL, updated_at TEXT NOT NULL)"""
)

_m9_kiosk_samples = _run(
    "CREATE TABLE kiosk_samples (kiosk TEXT NOT NULL, at TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE INDEX kiosk_samples_kiosk_at ON kiosk_samples(kiosk, at)",
)

_m10_releases = _run(*RELEASE_TABLES)

_m11_audit_by_target = _run(AUDIT_BY_TARGET)

MIGRATIONS: list[PgMigration] = [
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


def migrate_postgres(conn: psycopg.Connection[Any], migrations: Sequence[PgMigration] = MIGRATIONS) -> int:
    """Apply what is missing, each version in its own transaction; two processes starting at once
    wait for each other on an advisory lock instead of both migrating."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7316001)")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (0)")
            version = 0
        else:
            version = int(row[0])
        for number, step in enumerate(migrations[version:], start=version + 1):
            with conn.transaction():
                step(conn)
                conn.execute("UPDATE schema_version SET version = %s", (number,))
            version = number
    return version


@functools.lru_cache(maxsize=256)
def _placeholders(sql: str) -> Any:
    """The shared SQL's ``?`` placeholders in psycopg's style (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def web_pool(url: str, *, max_size: int = 16) -> ConnectionPool[Any]:
    """Connections for the web side: each request borrows one (``PostgresStore.borrowed``)
    instead of opening its own. Migrate the store before (``PostgresStore(url)``)."""
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "connect_timeout": 10},
        check=ConnectionPool.check_connection,
        name="collector-web",
        open=True,
    )
    return pool


# A batch of ratings and everything it moves, in one statement (one round trip): the ratings not
# stored yet, then — from exactly those (RETURNING) — one upsert per counter, day, score and flag
# into the daily and monthly roll-ups, the late arrivals, and the install's seq range. The arrays
# keep the statement's text the same for any batch size (psycopg and the server parse it once).
# Upserts go in one order for every collector, so two transactions never wait on each other in a
# cycle.
_ADD_RATINGS = """
WITH src AS (
    SELECT * FROM unnest(
        %b::text[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[], %b::smallint[], %b::text[],
        %b::text[], %b::text[], %b::text[], %b::text[], %b::integer[], %b::text[], %b::text[], %b::text[]
    ) AS s(id, kiosk, install, seq, counter, unit, score, flag, pressed_at, local_day, clock,
           snapshot_sha256, snapshot_bytes, snapshot_error, fw, received_at)
),
ins AS (
    INSERT INTO ratings (id, kiosk, install, seq, counter, unit, score, flag, pressed_at, local_day, clock,
                         snapshot_sha256, snapshot_bytes, snapshot_error, fw, received_at)
    SELECT * FROM src ON CONFLICT (id) DO NOTHING
    RETURNING id, kiosk, install, seq, counter, score, (flag IS NOT NULL)::int AS flagged, local_day,
              (clock = 'unsynced')::int AS unsynced
),
d AS (
    INSERT INTO daily (counter, day, score, flagged, n, unsynced)
    SELECT counter, local_day, score, flagged, COUNT(*), SUM(unsynced) FROM ins
    GROUP BY counter, local_day, score, flagged ORDER BY 1, 2, 3, 4
    ON CONFLICT (counter, day, score, flagged)
    DO UPDATE SET n = daily.n + excluded.n, unsynced = daily.unsynced + excluded.unsynced
),
m AS (
    INSERT INTO monthly (counter, month, score, flagged, n, unsynced)
    SELECT counter, substr(local_day, 1, 7), score, flagged, COUNT(*), SUM(unsynced) FROM ins
    GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (counter, month, score, flagged)
    DO UPDATE SET n = monthly.n + excluded.n, unsynced = monthly.unsynced + excluded.unsynced
),
a AS (
    INSERT INTO after_month (rating_id, counter, month, score, flagged, received_at)
    SELECT id, counter, substr(local_day, 1, 7), score, flagged, %s FROM ins
    WHERE substr(local_day, 1, 7) < %s
),
i AS (
    INSERT INTO installs (kiosk, install, count, min_seq, max_seq, last_received_at)
    SELECT kiosk, install, COUNT(*), MIN(seq), MAX(seq), %s FROM ins GROUP BY kiosk, install ORDER BY 1, 2
    ON CONFLICT (kiosk, install) DO UPDATE SET
        count = installs.count + excluded.count, min_seq = LEAST(installs.min_seq, excluded.min_seq),
        max_seq = GREATEST(installs.max_seq, excluded.max_seq), last_received_at = excluded.last_received_at
)
SELECT id FROM ins
"""


class PostgresStore(SharedSql):
    _FOR_UPDATE = " FOR UPDATE"
    _DUTY_RATINGS = (
        " FROM roster d CROSS JOIN LATERAL (SELECT r.counter, r.score FROM ratings r WHERE r.counter = d.counter"
        " AND r.pressed_at >= d.start_at AND r.pressed_at < d.end_at AND {rating} OFFSET 0) AS r WHERE {duty}"
    )

    def __init__(self, url: str, *, pool: ConnectionPool[Any] | None = None) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._pool = pool
        if pool is None:
            migrate_postgres(self.conn)

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(url)

    @classmethod
    def borrowed(cls, url: str, pool: ConnectionPool[Any]) -> PostgresStore:
        """A store on a connection of ``pool`` (already migrated); ``close()`` gives it back."""
        return cls(url, pool=pool)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            if self._pool is not None:
                if self._conn is not None:
                    self._pool.putconn(self._conn)  # the pool drops a closed one
                self._conn = self._pool.getconn(timeout=30)
            else:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            if self._pool is not None:
                self._pool.putconn(self._conn)
            else:
                self._conn.close()
            self._conn = None

    def transaction(self) -> AbstractContextManager[Any]:
        return self.conn.transaction()

    def savepoint(self) -> AbstractContextManager[Any]:
        return self.conn.transaction()  # inside a transaction, psycopg makes it a savepoint

    def is_outage(self, exc: BaseException) -> bool:
        """Connection trouble, the server shutting down, a full disk, or too many connections are
        the store's; a value it cannot hold (out of range, bad text, a constraint) is the data's."""
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | OSError):
            return True
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return sqlstate[:2] in ("53", "57", "58", "08", "XX")  # resources, shutdown, system, connection

    def ping(self) -> None:
        self.conn.execute("SELECT 1").fetchall()

    def schema_version(self) -> int:
        row = self.conn.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(_placeholders(sql), args)
            return [tuple(row) for row in cur.fetchall()] if cur.description else []

    def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.conn.cursor() as cur:
            cur.execute(_placeholders(sql), args)
            return max(cur.rowcount, 0)

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.conn.cursor() as cur:
            yield cur

    # --- registry --------------------------------------------------------------

    def replace_registry(self, registry: Registry, *, at: str | None = None) -> None:
        at = at or now_text()
        with self.transaction(), self._cursor() as cur:
            cur.execute("LOCK TABLE assignments IN EXCLUSIVE MODE")
            current = dict(cur.execute("SELECT kiosk, counter FROM assignments WHERE until IS NULL").fetchall())
            for kiosk, counter in current.items():
                entry = registry.kiosks.get(kiosk)
                if entry is None or entry.counter != counter:
                    cur.execute("UPDATE assignments SET until=%s WHERE kiosk=%s AND until IS NULL", (at, kiosk))
            cur.executemany(
                "INSERT INTO assignments(kiosk, counter, since) VALUES (%s,%s,%s)",
                [(k.id, k.counter, at) for k in registry.kiosks.values() if current.get(k.id) != k.counter],
            )
            for table in ("units", "counters", "kiosks"):
                cur.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
            cur.executemany(
                "INSERT INTO units VALUES (%s,%s,%s,%s)",
                [(u.id, u.name, u.level, u.parent) for u in registry.units.values()],
            )
            cur.executemany(
                "INSERT INTO counters VALUES (%s,%s,%s)", [(c.id, c.unit, c.name) for c in registry.counters.values()]
            )
            cur.executemany("INSERT INTO kiosks VALUES (%s,%s)", [(k.id, k.counter) for k in registry.kiosks.values()])

    # --- ingest (call inside transaction()) ----------------------------------------

    def add_rating_groups(
        self,
        groups: Sequence[tuple[str, Sequence[wire.Rating]]],
        *,
        unit_of: dict[str, str],
        received_at: str,
        tz: ZoneInfo,
    ) -> tuple[list[str], list[str]]:
        """One statement for the whole batch (see _ADD_RATINGS)."""
        fresh, duplicates = fresh_ratings(groups)
        columns: list[list[Any]] = [[] for _ in range(16)]
        for kiosk, r in fresh.values():
            for column, value in zip(
                columns,
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
                    r.pressed_at_dt.astimezone(tz).date().isoformat(),
                    r.clock,
                    r.snapshot.sha256 if r.snapshot else None,
                    r.snapshot.bytes if r.snapshot else None,
                    r.snapshot_error,
                    r.fw,
                    received_at,
                ),
                strict=True,
            ):
                column.append(value)
        received_month = wire.parse_time(received_at).astimezone(tz).date().isoformat()[:7]
        with self._cursor() as cur:
            cur.execute(_ADD_RATINGS, (*columns, received_at, received_month, received_at))
            inserted = {row[0] for row in cur.fetchall()}
        duplicates.extend(i for i in fresh if i not in inserted)
        new = [i for i in fresh if i in inserted]
        return new, duplicates

    # --- reading -----------------------------------------------------------------

    def counts(self, counters: Sequence[str], day_from: date, day_to: date, *, by: str) -> list[Count]:
        head, months, tail = _split_range(day_from, day_to)
        parts: list[tuple[str, str, str, str]] = []
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
            rows = self.conn.execute(
                f"SELECT {key}, {period}, score, flagged, SUM(n), SUM(unsynced) FROM {table}"  # type: ignore[arg-type]
                f" WHERE counter = ANY(%s) AND {column} BETWEEN %s AND %s GROUP BY 1, 2, score, flagged",
                (list(counters), low, high),
            ).fetchall()
            for c, p, s, f, n, unsynced in rows:
                total = summed[(c, p, s, bool(f))]
                total[0] += int(n)
                total[1] += int(unsynced)
        return [Count(c, p, s, f, n, u) for (c, p, s, f), (n, u) in summed.items()]

    def backlogs(self) -> list[KioskBacklog]:
        """Kiosks whose latest status reports ratings not yet acked, with the oldest one's press."""
        out = []
        for kiosk, state, doc, received_at in self.conn.execute(
            "SELECT kiosk, state, doc, received_at FROM kiosk_status"
        ).fetchall():
            backlog = json.loads(doc).get("backlog")  # Python's JSON, Infinity included
            ratings = backlog.get("ratings") if isinstance(backlog, dict) else None
            if not isinstance(ratings, int) or isinstance(ratings, bool) or ratings <= 0:
                continue  # no backlog, or not a count
            oldest = backlog.get("oldest_at") if isinstance(backlog, dict) else None
            out.append(KioskBacklog(kiosk, state, ratings, oldest if _is_time(oldest) else None, received_at))
        return out

    def late_arrivals(self, counters: Sequence[str], month: str, after: str) -> dict[int, int]:
        """Ratings (not flagged presses) of local month ``month`` at these counters that arrived
        after ``after`` (when the month's report was sent), per score."""
        return {
            int(score): int(n)
            for score, n in self.conn.execute(
                "SELECT score, COUNT(*) FROM after_month WHERE month = %s AND received_at > %s AND flagged = 0"
                " AND counter = ANY(%s) GROUP BY score",
                (month, after, list(counters)),
            ).fetchall()
        }

    def kiosk_statuses(self) -> dict[str, dict[str, Any]]:
        return {
            kiosk: {**json.loads(doc), "state": state, "received_at": received_at}
            for kiosk, state, doc, received_at in self.conn.execute(
                "SELECT kiosk, state, doc, received_at FROM kiosk_status"
            ).fetchall()
        }

    def expire_quarantine(self, *, older_than: str, max_bytes: int) -> dict[tuple[str, str], int]:
        dropped: dict[tuple[str, str], int] = defaultdict(int)
        with self.transaction(), self._cursor() as cur:
            cur.execute(
                "WITH gone AS (DELETE FROM quarantine WHERE received_at < %s RETURNING reason)"
                " SELECT reason, COUNT(*) FROM gone GROUP BY reason",
                (older_than,),
            )
            for reason, n in cur.fetchall():
                dropped[(reason, "expired")] += int(n)
            cur.execute(
                "WITH sized AS (SELECT id, SUM(bytes) OVER (ORDER BY id DESC) AS newer FROM quarantine),"
                " gone AS (DELETE FROM quarantine q USING sized s WHERE q.id = s.id AND s.newer > %s"
                "  RETURNING q.reason) SELECT reason, COUNT(*) FROM gone GROUP BY reason",
                (max_bytes,),
            )
            for reason, n in cur.fetchall():
                dropped[(reason, "over_quota")] += int(n)
            at = now_text()
            cur.executemany(
                "INSERT INTO quarantine_dropped VALUES (%s,%s,%s,%s) ON CONFLICT (reason, why)"
                " DO UPDATE SET n = quarantine_dropped.n + excluded.n, last_at = excluded.last_at",
                [(reason, why, n, at) for (reason, why), n in sorted(dropped.items())],
            )
        return dict(dropped)

    def quarantine_stats(self) -> QuarantineStats:
        row = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM quarantine").fetchone()
        dropped = {
            (r, w): int(n) for r, w, n in self.conn.execute("SELECT reason, why, n FROM quarantine_dropped").fetchall()
        }
        return QuarantineStats(int(row[0]), int(row[1]), dropped) if row else QuarantineStats(0, 0, dropped)

    def purge_snapshots(self, older_than: str) -> list[str]:
        """Forget pictures received before ``older_than``: those kept in the database go with
        them; returns the files no rating needs any more (one shared by a newer rating stays)."""
        with self.transaction():
            paths = sorted(
                {
                    r[0]
                    for r in self.conn.execute(
                        "DELETE FROM snapshots WHERE received_at < %s RETURNING path", (older_than,)
                    ).fetchall()
                }
            )
            still_needed = {
                r[0]
                for r in self.conn.execute(
                    "SELECT DISTINCT path FROM snapshots WHERE path = ANY(%s)", (paths,)
                ).fetchall()
            }
            return self._drop_pictures([p for p in paths if p not in still_needed])

    def keep_picture(self, root: Path, digest: str, data: bytes) -> str:
        """Keep a checked picture; its reference for ``add_snapshot``. PostgreSQL: a row of
        ``pictures`` (bytea), where every collector of the province sees it; ``root`` is unused."""
        self.conn.execute(
            "INSERT INTO pictures (sha256, data) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING", (digest, data)
        )
        return PICTURE_IN_DB + digest

    # --- pages: one page of ratings, the heat map, the review queue ------------------------
    # Local time is PostgreSQL's own: ``pressed_at::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh'``
    # (the server's tz database), so no offset table is needed as on SQLite.

    def ratings_page(
        self, counters: Sequence[str], start: str, end: str, *, limit: int, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Ratings and flagged presses at these counters with pressed_at in [start, end), newest
        first, one page of them, with whether a snapshot is stored and who reviewed them."""
        rows = self.conn.execute(
            f"SELECT {_PAGE_COLUMNS}, NULL FROM ratings r {_PAGE_JOINS}"
            " WHERE r.counter = ANY(%s::text[]) AND r.pressed_at >= %s AND r.pressed_at < %s"
            " ORDER BY r.pressed_at DESC, r.id LIMIT %s OFFSET %s",
            (list(counters), start, end, limit, offset),
        ).fetchall()
        return [_page_row(row) for row in rows]

    def heat_counts(
        self, counters: Sequence[str], start: str, end: str, *, tz: ZoneInfo
    ) -> list[tuple[int, int, int, int]]:
        """Accepted ratings at these counters pressed in [start, end) as (local weekday with
        0 = Monday, local hour, count, of them "Không hài lòng")."""
        rows = self.conn.execute(
            "SELECT EXTRACT(ISODOW FROM lt)::int - 1, EXTRACT(HOUR FROM lt)::int, COUNT(*),"
            " COUNT(*) FILTER (WHERE score = 1) FROM"
            " (SELECT r.pressed_at::timestamptz AT TIME ZONE %s AS lt, r.score FROM ratings r"
            "  WHERE r.counter = ANY(%s::text[]) AND r.pressed_at >= %s AND r.pressed_at < %s"
            "  AND r.flag IS NULL) q GROUP BY 1, 2",
            (tz.key, list(counters), start, end),
        ).fetchall()
        return [(int(d), int(h), int(n), int(u)) for d, h, n, u in rows]

    def _review_sql(
        self,
        counters: Sequence[str],
        start: str,
        end: str,
        tz: ZoneInfo,
        office_days: Sequence[int],
        office_spans: Sequence[tuple[time, time]],
        pending_only: bool,
        reasons: Sequence[str] | None = None,
    ) -> tuple[str, list[Any]]:
        spans = " OR ".join("(r.lt::time >= %s AND r.lt::time < %s)" for _ in office_spans) or "FALSE"
        sql = (
            f"SELECT * FROM (SELECT {_PAGE_COLUMNS},"
            f" NOT ((EXTRACT(ISODOW FROM r.lt)::int - 1) = ANY(%s::int[]) AND ({spans})) AS after_hours"
            " FROM (SELECT r.*, r.pressed_at::timestamptz AT TIME ZONE %s AS lt FROM ratings r"
            "  WHERE r.counter = ANY(%s::text[]) AND r.pressed_at >= %s AND r.pressed_at < %s) r"
            f" {_PAGE_JOINS}) q WHERE {review_condition(reasons)}"
            + (" AND reviewed_by IS NULL" if pending_only else "")
        )
        args = [list(office_days), *[t for pair in office_spans for t in pair], tz.key, list(counters), start, end]
        return sql, args

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
        sql, args = self._review_sql(counters, start, end, tz, office_days, office_spans, pending_only, reasons)
        rows = self.conn.execute(f"{sql} ORDER BY pressed_at DESC, id LIMIT %s OFFSET %s", (*args, limit, offset))
        return [_page_row(row) for row in rows.fetchall()]

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
        sql, args = self._review_sql(counters, start, end, tz, office_days, office_spans, False, reasons)
        row = self.conn.execute(f"SELECT COUNT(*), COUNT(*) - COUNT(reviewed_by) FROM ({sql}) x", args).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)
