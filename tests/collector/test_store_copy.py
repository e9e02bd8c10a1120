"""`collector store copy`: a unit's SQLite store moved to a real PostgreSQL and back, checked."""

from __future__ import annotations

from datetime import date

from collector.cli import main as collector_main
from collector.pgstore import PostgresStore
from collector.store import SqliteStore
from tests.collector.test_backup import fill


def test_sqlite_store_is_copied_to_postgresql_table_by_table_and_back(tmp_path, settings, postgres, capsys):
    settings.data_dir.mkdir(parents=True)
    sqlite_path = settings.data_dir / "collector.db"
    source = SqliteStore(sqlite_path)
    fill(source, settings)
    with source.transaction():
        source.add_quarantine("sat/v1/k/k-vb-q1/ratings", b"\x00", "not_json", "a NUL \x00 in the detail", "x")
        source.record_status(
            "k-vb-q1", {"kiosk": "k-vb-q1", "state": "online", "fw": "0.1.0"}, "2026-11-20T00:00:00.000Z"
        )
    before = sorted(source.counts(["vb-q1", "vb-q2"], date(2026, 11, 1), date(2026, 11, 30), by="day"), key=repr)
    source.close()
    pg_url = postgres.fresh_database()

    assert collector_main(["store", "copy", "--from", f"sqlite:///{sqlite_path}", "--to", pg_url]) == 0
    assert "copied and checked" in capsys.readouterr().out
    copy = PostgresStore(pg_url)
    assert sorted(copy.counts(["vb-q1", "vb-q2"], date(2026, 11, 1), date(2026, 11, 30), by="day"), key=repr) == before
    assert copy.rating_count() == 8
    assert {e.reason for e in copy.quarantined()} == {"not_json"}
    assert copy.kiosk_statuses()["k-vb-q1"]["fw"] == "0.1.0"
    # the picture files are now in the database, where every collector sees them
    (rating_id,) = copy.conn.execute("SELECT rating_id FROM snapshots").fetchone()
    ref = copy.snapshot_path(rating_id)
    assert ref is not None and ref.startswith("db:")
    (picture,) = {p for p in settings.snapshot_dir.rglob("*.jpg")}
    assert copy.picture(ref) == picture.read_bytes()
    # ids go on after the copied ones
    new_id = copy.add_quarantine("t", b"x", "not_json", "", "2026-11-21T00:00:00.000Z")
    assert new_id > max(e.id for e in copy.quarantined() if e.id != new_id)
    copy.close()

    # a copy never merges into a store that has data
    assert collector_main(["store", "copy", "--from", f"sqlite:///{sqlite_path}", "--to", pg_url]) == 2
    assert "not empty" in capsys.readouterr().err

    back = tmp_path / "back.db"
    assert collector_main(["store", "copy", "--from", pg_url, "--to", f"sqlite:///{back}"]) == 0
    again = SqliteStore(back)
    assert sorted(again.counts(["vb-q1", "vb-q2"], date(2026, 11, 1), date(2026, 11, 30), by="day"), key=repr) == before
    assert again.picture(ref) == picture.read_bytes()  # SQLite reads what came from the database
    again.close()
