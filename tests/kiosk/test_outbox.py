import sqlite3

from kiosk.outbox import SqliteOutbox


def record(outbox, **changes):
    values = dict(
        counter="vb-q1",
        score=4,
        flag=None,
        pressed_epoch=1.795e9,
        clock="synced",
        boot_id="boot-a",
        since_boot_s=10.0,
        fw="0.1.0",
        snapshot_state="error",
        snapshot_error="camera_disabled",
    )
    values.update(changes)
    return outbox.record_press(**values)


def test_outbox_is_wal_with_full_sync(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    assert outbox._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_seq_never_repeats_across_reopen_and_pruning(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    first = [record(outbox) for _ in range(3)]
    outbox.mark_acked([p.id for p in first], now_epoch=100.0)
    assert outbox.prune(older_than_epoch=200.0) == 3
    outbox.close()
    reopened = SqliteOutbox(tmp_path / "o.db")
    assert record(reopened).seq == 4
    assert reopened.install_id == outbox.install_id


def test_new_card_gets_a_new_install_id(tmp_path):
    assert SqliteOutbox(tmp_path / "a.db").install_id != SqliteOutbox(tmp_path / "b.db").install_id


def test_unacked_rows_come_in_seq_order_after_a_cursor(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    presses = [record(outbox, score=1 + i % 4) for i in range(5)]
    outbox.mark_acked([presses[1].id], now_epoch=1.0)
    assert [r.seq for r in outbox.unacked(after_seq=0, limit=10)] == [1, 3, 4, 5]
    assert [r.seq for r in outbox.unacked(after_seq=3, limit=1)] == [4]
    assert outbox.backlog().ratings == 4


def test_backlog_knows_when_its_oldest_unacked_rating_was_pressed(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    assert outbox.backlog().oldest_at is None
    first = record(outbox, pressed_epoch=1_795_000_000.25)
    record(outbox, pressed_epoch=1_795_000_060.0)
    assert outbox.backlog().oldest_at == "2026-11-18T11:06:40.250Z"
    outbox.mark_acked([first.id], now_epoch=1.0)
    assert outbox.backlog().oldest_at == "2026-11-18T11:07:40.000Z"


def test_unsynced_presses_of_this_boot_are_corrected(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    this_boot = record(outbox, clock="unsynced", pressed_epoch=0.0, since_boot_s=50.0)
    older_boot = record(outbox, clock="unsynced", boot_id="boot-old", pressed_epoch=0.0)
    assert outbox.correct_unsynced(boot_id="boot-a", wall_minus_boot_s=1.795e9) == 1
    rows = {r.id: r for r in outbox.unacked(after_seq=0, limit=10)}
    assert rows[this_boot.id].clock == "corrected"
    assert rows[this_boot.id].pressed_epoch == 1.795e9 + 50.0
    assert rows[older_boot.id].clock == "unsynced"


def test_late_picture_is_not_attached_to_a_rating_that_gave_up(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    press = record(outbox, snapshot_state="pending", snapshot_error=None)
    assert outbox.expire_pending_snapshots(boot_id="boot-a", since_boot_s=20.0, error="timeout") == 1
    assert not outbox.attach_snapshot(press.id, path="x.jpg", sha256="0" * 64, nbytes=10, taken_epoch=1.0)
    assert outbox.unacked(after_seq=0, limit=1)[0].to_rating().snapshot_error == "timeout"


def test_picture_budget_drops_oldest_pictures_never_ratings(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    for i in range(4):
        press = record(outbox, snapshot_state="pending", snapshot_error=None)
        outbox.attach_snapshot(press.id, path=f"{i}.jpg", sha256="a" * 64, nbytes=1000, taken_epoch=float(i))
    assert outbox.drop_snapshot_files(2500) == ["0.jpg", "1.jpg"]
    assert outbox.backlog().ratings == 4 and outbox.backlog().snapshots == 2


def test_suppressed_presses_survive_restart(tmp_path):
    outbox = SqliteOutbox(tmp_path / "o.db")
    outbox.count_suppressed(3)
    outbox.close()
    assert SqliteOutbox(tmp_path / "o.db").suppressed_presses == 3


def test_schema_version_is_recorded(tmp_path):
    SqliteOutbox(tmp_path / "o.db").close()
    assert sqlite3.connect(tmp_path / "o.db").execute("PRAGMA user_version").fetchone()[0] == 1


def test_an_outbox_migrated_by_a_newer_release_is_used_by_the_older_one(tmp_path, caplog):
    """A rollback (kiosk/update.py) runs the older version on the newer outbox: migrations only add."""
    import logging

    from kiosk.outbox import SqliteOutbox

    caplog.set_level(logging.INFO)
    outbox = SqliteOutbox(tmp_path / "outbox.db")
    record(outbox)
    version = outbox.db.conn.execute("PRAGMA user_version").fetchone()[0]
    outbox.db.conn.execute("ALTER TABLE ratings ADD COLUMN added_by_a_newer_release TEXT")
    outbox.db.conn.execute(f"PRAGMA user_version={version + 1}")
    outbox.close()
    older = SqliteOutbox(tmp_path / "outbox.db")
    assert "newer than this version" in caplog.text
    record(older)
    assert older.backlog().ratings == 2
    older.close()
