"""Press → outbox → real Mosquitto → (stand-in) collector → ack → pruned."""

import sqlite3

from kiosk import wire
from tests.conftest import wait_for


def test_press_is_published_with_every_contract_field(rig_factory, collector):
    rig = rig_factory()
    rig.press(1)
    assert rig.pump(lambda: collector.ratings)
    rating = collector.ratings[0]
    assert rating.counter == "vb-q1" and rating.score == 4 and rating.seq == 1
    assert rating.install == rig.kiosk.outbox.install_id
    assert rating.clock == "synced" and rating.flag is None
    assert rating.snapshot is None and rating.snapshot_error == "camera_disabled"
    assert rating.fw == "0.1.0"
    assert rating.pressed_at == wire.format_epoch(rig.clock.wall() - 6.0)


def test_buttons_map_to_configured_scores(rig_factory, collector):
    rig = rig_factory(sections={"panel": {"scores": [1, 2, 3, 4]}})
    for button in (1, 2, 3, 4):
        rig.press(button, then_advance_s=61)
    assert rig.pump(lambda: len(collector.unique()) == 4)
    assert [r.score for r in sorted(collector.unique().values(), key=lambda r: r.seq)] == [1, 2, 3, 4]


def test_rating_stays_in_outbox_until_collector_acks(rig_factory, collector):
    collector.acking = False
    rig = rig_factory()
    rig.press(2)
    assert rig.pump(lambda: len(collector.ratings) >= 1)
    # No ack: published again after ack_timeout_s (2 s in these tests).
    assert rig.pump(lambda: len(collector.ratings) >= 2, timeout_s=10)
    assert len(collector.unique()) == 1
    assert rig.kiosk.outbox.backlog().ratings == 1
    collector.acking = True
    assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, timeout_s=10)
    sent = len(collector.ratings)
    rig.pump(lambda: False, timeout_s=3)
    assert len(collector.ratings) == sent  # acked → never published again


def test_status_says_when_the_oldest_unacked_rating_was_pressed(rig_factory, collector):
    collector.acking = False
    rig = rig_factory()
    rig.press(2)
    assert rig.pump(lambda: collector.ratings)
    pressed_at = collector.ratings[0].pressed_at

    def reported() -> bool:
        return bool(collector.statuses) and collector.statuses[-1]["backlog"]["ratings"] == 1

    assert rig.pump(reported, timeout_s=15)
    assert collector.statuses[-1]["backlog"]["oldest_at"] == pressed_at
    collector.acking = True
    assert rig.pump(lambda: collector.statuses[-1]["backlog"] == {"ratings": 0, "snapshots": 0, "oldest_at": None}, 15)


def test_acked_ratings_are_pruned_after_retention(rig_factory, collector, tmp_path):
    rig = rig_factory(sections={"outbox": {"retention_days": 0}})
    rig.press(1)
    assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0)
    rig.kiosk.outbox.prune(older_than_epoch=rig.clock.wall() + 1)
    db = sqlite3.connect(tmp_path / "kiosk" / "outbox.db")
    assert db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 0


def test_broker_down_then_back_delivers_everything_in_order(rig_factory, collector, broker):
    rig = rig_factory()
    rig.press(1)
    assert rig.pump(lambda: len(collector.unique()) == 1)
    broker.stop()
    for button in (1, 2, 3, 4, 1, 2):
        rig.press(button, then_advance_s=61)
    assert rig.kiosk.outbox.backlog().ratings == 6
    broker.start()
    assert rig.pump(lambda: len(collector.unique()) == 7, timeout_s=30)
    seqs = [r.seq for r in collector.ratings]
    assert sorted(set(seqs)) == list(range(1, 8))
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == sorted(first_seen)
    assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0, timeout_s=15)


def test_refused_presses_are_sent_flagged_and_mashing_is_counted(rig_factory, collector):
    rig = rig_factory(sections={"panel": {"flagged_per_minute": 2}})
    rig.press(1, then_advance_s=0.5)
    for _ in range(6):
        rig.press(4, then_advance_s=0.5)
    assert rig.pump(lambda: len(collector.unique()) == 3)
    flags = [r.flag for r in sorted(collector.unique().values(), key=lambda r: r.seq)]
    assert flags == [None, "lockout", "lockout"]
    assert all(r.snapshot is None for r in collector.ratings if r.flag)
    assert rig.kiosk.outbox.suppressed_presses == 4


def test_status_is_retained_and_will_says_offline(rig_factory, collector, broker):
    rig = rig_factory()
    assert rig.pump(lambda: collector.statuses)
    status = collector.statuses[-1]
    assert status["state"] == "online" and status["kiosk"] == "k-vb-q1"
    assert status["counter"] == "vb-q1" and status["backlog"] == {"ratings": 0, "snapshots": 0, "oldest_at": None}
    for key in (
        "at",
        "fw",
        "install",
        "boot",
        "uptime_s",
        "camera",
        "clock",
        "disk_free_mb",
        "suppressed_presses",
        "last_press_at",
    ):
        assert key in status
    rig.close()
    assert wait_for(lambda: collector.statuses[-1]["state"] == "offline")


def test_malformed_acks_are_ignored(rig_factory, collector):
    rig = rig_factory()
    topic = wire.Topics().acks("k-vb-q1")
    for junk in (b"", b"not json", b'{"v":9}', b'{"v":1,"ratings":[1,2]}', b"\xff" * 100):
        collector.client.publish(topic, junk, qos=1)
    rig.press(3)
    assert rig.pump(lambda: rig.kiosk.outbox.backlog().ratings == 0 and collector.ratings)
    assert rig.kiosk.publisher.connected


def test_a_backlog_goes_out_in_batches(tmp_path, broker, collector):
    from kiosk.outbox import SqliteOutbox
    from tests.kiosk.conftest import KioskRig, kiosk_settings

    # The backlog is there before the kiosk starts, as after weeks offline; filled while the
    # publisher runs, it would rightly go out in whatever pieces were ready.
    settings = kiosk_settings(tmp_path, broker.port, panel={"lockout_s": 0, "max_per_minute": 100000})
    outbox = SqliteOutbox(settings.outbox_path)
    for i in range(1200):
        outbox.record_press(
            counter="vb-q1",
            score=1 + i % 4,
            flag=None,
            pressed_epoch=1.79e9 + i,
            clock="synced",
            boot_id="b",
            since_boot_s=1.0,
            fw="0.1.0",
            snapshot_state="error",
            snapshot_error="camera_disabled",
        )
    outbox.close()
    rig = KioskRig(settings)
    rig.kiosk.publisher.wake()
    assert rig.pump(lambda: len(collector.unique()) == 1200, timeout_s=30)
    try:
        assert [len(b.ratings) for b in collector.batches[:3]] == [500, 500, 200]
        assert len(collector.batches) <= 6, [(b.ratings[0].seq, len(b.ratings)) for b in collector.batches]
    finally:
        rig.close()
