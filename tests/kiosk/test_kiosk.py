"""The kiosk loop with real adapters: camera trouble, clock sync, a full disk."""

import hashlib

from kiosk.clock import FakeClock
from tests.kiosk.test_camera import BrokenCamera, HangingCamera


class CountingCamera:
    name = "counting"

    def __init__(self):
        self.taken = 0

    def capture(self):
        from kiosk.camera import GeneratedCamera

        self.taken += 1
        return GeneratedCamera().capture()

    def close(self):
        pass


def test_snapshot_follows_its_rating(rig_factory, collector):
    rig = rig_factory(camera=CountingCamera())
    rig.press(1, then_advance_s=0)
    assert rig.pump(lambda: collector.snapshots)
    rating = collector.ratings[0]

    picture = collector.snapshots[rating.id]
    assert rating.snapshot.sha256 == hashlib.sha256(picture).hexdigest()
    assert rating.snapshot.bytes == len(picture)
    assert rig.pump(lambda: rig.kiosk.outbox.backlog().snapshots == 0)
    assert not list((rig.kiosk.settings.snapshot_dir).glob("*.jpg"))  # deleted once acked


def test_hung_camera_does_not_delay_or_lose_ratings(rig_factory, collector):
    camera = HangingCamera()
    rig = rig_factory(camera=camera, sections={"camera": {"timeout_s": 0.3}})
    rig.press(1)
    # The press was committed before the picture was asked for.
    assert rig.kiosk.outbox.backlog().ratings == 1
    rig.press(2, then_advance_s=61)
    assert rig.pump(lambda: len(collector.unique()) == 2, timeout_s=15)
    assert {r.snapshot_error for r in collector.ratings} == {"timeout"}
    camera.release.set()


def test_failing_camera_marks_error_and_status(rig_factory, collector):
    rig = rig_factory(camera=BrokenCamera())
    rig.press(4)
    assert rig.pump(lambda: collector.ratings)
    assert collector.ratings[0].snapshot_error == "camera_unavailable"
    assert rig.pump(lambda: any(s.get("camera") == "error" for s in collector.statuses))


def test_unsynced_presses_are_corrected_after_sync(rig_factory, collector):
    clock = FakeClock(wall=946_684_800.0, synced=False)  # a Pi that booted thinking it is 2000
    rig = rig_factory(clock=clock)
    rig.press(1, then_advance_s=30)
    rig.pump(lambda: False, timeout_s=1)
    assert collector.ratings == []  # held while waiting for the clock (unsynced_hold_s)
    clock.set_wall(1_795_000_000.0, synced=True)
    assert rig.pump(lambda: collector.ratings)
    rating = collector.ratings[0]
    assert rating.clock == "corrected"
    assert rating.pressed_at == "2026-11-18T11:06:10.000Z"  # 1_795_000_000 - 30 s


def test_unsynced_press_goes_out_unsynced_after_the_hold(rig_factory, collector):
    clock = FakeClock(wall=946_684_800.0, synced=False)
    rig = rig_factory(clock=clock, sections={"clock": {"unsynced_hold_s": 10}})
    rig.press(1, then_advance_s=11)
    assert rig.pump(lambda: collector.ratings)
    assert collector.ratings[0].clock == "unsynced"


def test_full_disk_shows_fault_and_keeps_the_press_for_retry(rig_factory, collector, monkeypatch):
    from kiosk.errors import OutboxError

    rig = rig_factory()
    faults = []
    monkeypatch.setattr(rig.panel, "fault", lambda: faults.append(1))
    real = rig.kiosk.outbox.record_press

    def full(**kwargs):
        raise OutboxError("database or disk is full")

    monkeypatch.setattr(rig.kiosk.outbox, "record_press", full)
    rig.press(2)
    assert faults == [1] and rig.kiosk.outbox.backlog().ratings == 0
    monkeypatch.setattr(rig.kiosk.outbox, "record_press", real)
    rig.kiosk._timers.pop("retry", None)
    assert rig.pump(lambda: collector.ratings, timeout_s=15)
    assert collector.ratings[0].score == 3
