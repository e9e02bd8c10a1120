"""A kiosk whose NTP is blocked takes its time from the collector's acks (CONTRACT additions:
time in acks): presses go out at once stamped ``corrected``, presses from before the first answer
are corrected when it comes, and NTP, when it works, still wins."""

from __future__ import annotations

import pytest

from kiosk import wire
from kiosk.clock import CollectorTime, FakeClock, stamp

TRUE_NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z, the collector's clock
PI_WALL = 946_684_800.0  # 2000-01-01: what a Pi without a real-time clock or NTP believes


def test_offset_is_the_answer_time_less_half_the_round_trip():
    ct = CollectorTime()
    assert ct.estimate(100.0) is None
    assert ct.observe(at=TRUE_NOW, sent=100.0, received=100.4)
    est = ct.estimate(100.4)
    assert est is not None
    assert est.offset_s == pytest.approx(TRUE_NOW - 100.2)
    assert est.error_s == pytest.approx(0.2)
    # The error grows with the boot clock's drift (100 ppm): a day later, 8.64 s more.
    assert ct.estimate(100.4 + 86_400).error_s == pytest.approx(0.2 + 8.64)


def test_a_slow_answer_does_not_replace_a_fast_one_until_the_fast_one_has_aged():
    ct = CollectorTime()
    assert ct.observe(at=TRUE_NOW, sent=100.0, received=100.1)  # error 0.05 s
    assert not ct.observe(at=TRUE_NOW + 60, sent=158.0, received=162.0)  # error 2 s over 3G
    assert ct.estimate(162.0).offset_s == pytest.approx(TRUE_NOW - 100.05)
    # Six hours on, the fast sample's error has grown past 2 s: the slow one is now better.
    later = 100.1 + 6 * 3600
    assert ct.observe(at=TRUE_NOW + 6 * 3600, sent=later - 4, received=later)
    # An answer slower than 10 s, or from before it was asked, says too little.
    assert not ct.observe(at=TRUE_NOW, sent=100.0, received=111.0)
    assert not ct.observe(at=TRUE_NOW, sent=100.0, received=99.0)


def test_the_stamp_prefers_ntp_then_the_collector_then_the_bare_clock():
    clock = FakeClock(wall=PI_WALL, synced=False)
    ct = CollectorTime()
    assert stamp(clock, ct).clock == "unsynced"
    assert stamp(clock, ct).wall == PI_WALL
    ct.observe(at=TRUE_NOW, sent=clock.since_boot(), received=clock.since_boot())
    clock.advance(30)
    now = stamp(clock, ct)
    assert (now.clock, now.wall) == ("corrected", TRUE_NOW + 30)
    clock.set_wall(TRUE_NOW + 31, synced=True)
    assert (stamp(clock, ct).clock, stamp(clock, ct).wall) == ("synced", TRUE_NOW + 31)


def test_without_ntp_presses_take_the_collectors_time_and_go_at_once(rig_factory, collector):
    collector.time_now = lambda: TRUE_NOW
    clock = FakeClock(wall=PI_WALL, synced=False)
    rig = rig_factory(clock=clock)  # unsynced_hold_s is the default 15 minutes
    # The status sent on connect is answered; its answer sets the clock.
    assert rig.pump(lambda: rig.kiosk.collector_time.estimate(clock.since_boot()) is not None)
    rig.press(2, then_advance_s=0)
    assert rig.pump(lambda: collector.ratings, timeout_s=5)  # no 15-minute hold
    rating = collector.ratings[0]
    assert rating.clock == "corrected"
    assert rating.pressed_at == wire.format_epoch(TRUE_NOW)
    status = rig.kiosk.status(rig.kiosk.outbox)
    assert status["clock"] == "corrected"
    assert status["clock_source"] == "collector"
    assert 0 <= status["clock_error_ms"] < 1000
    assert status["at"] == wire.format_epoch(TRUE_NOW)


def test_presses_before_the_first_answer_are_corrected_when_it_comes(rig_factory, collector):
    clock = FakeClock(wall=PI_WALL, synced=False)
    rig = rig_factory(clock=clock)
    rig.press(1, then_advance_s=40)  # pressed before any answer: stored unsynced, held
    rig.pump(lambda: False, timeout_s=1)
    assert collector.ratings == []
    # The collector starts answering (a newer collector took over): the next status gets the time.
    collector.time_now = lambda: TRUE_NOW
    rig.kiosk.publisher._wake.set()
    rig.press(3, then_advance_s=0)  # a changed backlog sends a status within a few seconds
    assert rig.pump(lambda: len(collector.unique()) == 2, timeout_s=15)
    first, second = sorted(collector.unique().values(), key=lambda r: r.seq)
    assert (first.clock, second.clock) == ("corrected", "corrected")
    # The first press was 40 s (boot clock) before the second; both on the collector's time line.
    assert wire.parse_time(second.pressed_at).timestamp() - wire.parse_time(first.pressed_at).timestamp() == 40.0
    assert abs(wire.parse_time(second.pressed_at).timestamp() - TRUE_NOW) < 60


def test_ntp_wins_over_the_collector(rig_factory, collector):
    collector.time_now = lambda: TRUE_NOW + 3600  # a collector an hour fast
    clock = FakeClock(wall=TRUE_NOW, synced=True)
    rig = rig_factory(clock=clock)
    assert rig.pump(lambda: rig.kiosk.collector_time.samples > 0)
    rig.press(4, then_advance_s=0)
    assert rig.pump(lambda: collector.ratings)
    assert collector.ratings[0].clock == "synced"
    assert collector.ratings[0].pressed_at == wire.format_epoch(TRUE_NOW)
    assert rig.kiosk.status(rig.kiosk.outbox)["clock_source"] == "ntp"


def test_an_answer_to_a_status_of_another_connection_sets_nothing(rig_factory, collector):
    clock = FakeClock(wall=PI_WALL, synced=False)
    rig = rig_factory(clock=clock)
    assert rig.pump(lambda: collector.statuses)
    publisher = rig.kiosk.publisher
    # Answers queued in the broker while the kiosk was away name probes this connection never sent.
    publisher._acks.put((wire.encode_ack(status="00000000deadbeef", at=TRUE_NOW - 86_400), clock.since_boot()))
    publisher._acks.put((wire.encode_ack(at=TRUE_NOW - 86_400), clock.since_boot()))  # an answer without a probe
    publisher._wake.set()
    rig.pump(lambda: False, timeout_s=1)
    assert rig.kiosk.collector_time.estimate(clock.since_boot()) is None


def test_one_answer_far_from_the_estimate_is_not_believed_alone():
    """From the review: one fast ack from a collector host whose clock is a year off set the time."""
    from kiosk.clock import CollectorTime

    times = CollectorTime()
    truth = 1_800_000_000.0
    assert times.observe(at=truth + 100.04, sent=100.0, received=100.08)  # boot clock 100 s: offset = truth
    year = 365 * 86400
    assert not times.observe(at=truth - year + 160.01, sent=160.0, received=160.02)  # fast, but a year off
    assert abs(times.estimate(160.0).offset_s - truth) < 0.1
    assert times.observe(at=truth + 170.01, sent=170.0, received=170.02)  # the right hosts go on: better sample
    assert not times.observe(at=truth - year + 180.01, sent=180.0, received=180.02)
    assert not times.observe(at=truth + 190.5, sent=190.0, received=191.0)  # agrees, but slower: not better
    # The collector's clock really was stepped: two answers in a row say so, and are believed.
    assert not times.observe(at=truth + 3600 + 200.01, sent=200.0, received=200.02)
    assert times.observe(at=truth + 3600 + 210.01, sent=210.0, received=210.02)
    assert abs(times.estimate(210.0).offset_s - (truth + 3600)) < 0.1
    assert times.disagreed == 4
