"""A lying or broken kiosk moves no number: counter and time checks, against the real store."""

from __future__ import annotations

import pytest

from collector.ingest import Acks, MessageHandler, replay_quarantine
from collector.registry import KioskEntry, Registry
from kiosk import wire
from tests.ratings import make_rating

RECEIVED = "2026-11-22T03:00:00.000Z"


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


def send(handler, store, kiosk, *ratings, received_at=RECEIVED):
    acks = Acks()
    with store.transaction():
        handler.handle(f"sat/v1/k/{kiosk}/ratings", wire.encode_batch(kiosk, list(ratings)), received_at, acks)
    return acks.ratings[kiosk]


def handler_for(store, settings):
    return MessageHandler(store=store, settings=settings, registry=store.load_registry)


def moved(store, kiosk, counter, at):
    registry = store.load_registry()
    kiosks = [k for k in registry.kiosks.values() if k.id != kiosk] + [KioskEntry(kiosk, counter)]
    store.replace_registry(Registry.build(registry.units.values(), registry.counters.values(), kiosks), at=at)


def test_a_kiosk_cannot_credit_another_units_counter(store, settings):
    handler = handler_for(store, settings)
    # k-sp-q1 stands in Sa Pa; 50 "Không hài lòng" for Văn Bàn's counter vb-q1
    lies = [make_rating(seq=i + 1, counter="vb-q1", score=1) for i in range(50)]
    acked = send(handler, store, "k-sp-q1", *lies)
    assert set(acked) == {r.id for r in lies}  # acked, so the kiosk stops sending them …
    assert store.rating_count() == 0  # … and none counts
    assert {e.reason for e in store.quarantined(limit=100)} == {"counter_mismatch"}
    assert len(store.quarantined(limit=100)) == 50


def test_ratings_for_a_counter_the_kiosk_was_moved_from_still_count(store, settings):
    handler = handler_for(store, settings)
    moved(store, "k-vb-q1", "vb-q2", at="2026-11-20T00:00:00.000Z")
    before_move = make_rating(seq=1, counter="vb-q1", pressed_at="2026-11-19T02:00:00.000Z")
    after_move = make_rating(seq=2, counter="vb-q2")
    send(handler, store, "k-vb-q1", before_move, after_move)
    assert store.rating_count() == 2
    assert store.quarantined() == []
    assignments = store.assignments()
    assert assignments.counters["k-vb-q1"] == {"vb-q1", "vb-q2"}


def test_a_replaced_kiosk_keeps_its_history(store, settings):
    # --replace at another counter is a move too: the old counter stays in the history
    moved(store, "k-vb-q2", "kyh-q1", at="2026-11-21T00:00:00.000Z")
    moved(store, "k-vb-q2", "vb-q2", at="2026-11-21T01:00:00.000Z")
    assert store.assignments().counters["k-vb-q2"] == {"vb-q2", "kyh-q1"}


def test_a_press_more_than_five_minutes_after_receipt_is_time_in_future(store, settings):
    handler = handler_for(store, settings)
    ok = make_rating(seq=1, pressed_at="2026-11-22T03:04:59.999Z")
    future = make_rating(seq=2, pressed_at="2026-11-22T03:05:00.001Z")
    acked = send(handler, store, "k-vb-q1", ok, future)
    assert set(acked) == {ok.id, future.id}
    assert store.rating_count() == 1
    assert [e.reason for e in store.quarantined()] == ["time_in_future"]


def test_a_press_long_before_the_kiosks_first_enrolment_is_time_implausible(store, settings):
    handler = handler_for(store, settings)
    registry = store.load_registry()
    kiosks = list(registry.kiosks.values()) + [KioskEntry("k-new-1", "vb-q1")]
    store.replace_registry(
        Registry.build(registry.units.values(), registry.counters.values(), kiosks), at="2026-11-20T00:00:00.000Z"
    )
    day_before = make_rating(seq=1, pressed_at="2026-11-19T00:00:00.000Z")  # within the day's grace
    older = make_rating(seq=2, pressed_at="2026-11-18T23:59:59.999Z")
    send(handler, store, "k-new-1", day_before, older)
    assert store.rating_count() == 1
    assert [e.reason for e in store.quarantined()] == ["time_implausible"]


def test_time_refusals_are_replayable_and_judged_by_their_original_receipt(store, settings):
    handler = handler_for(store, settings)
    future = make_rating(seq=1, pressed_at="2026-11-22T09:00:00.000Z")
    send(handler, store, "k-vb-q1", future)
    # replayed today, the press is in the past — but it was in the future when it arrived
    assert replay_quarantine(store=store, settings=settings) == [(store.quarantined()[0].id, "still time_in_future")]
    assert store.rating_count() == 0


def test_counter_mismatch_is_stored_on_replay_once_the_registry_says_the_kiosk_was_there(store, settings):
    handler = handler_for(store, settings)
    r = make_rating(seq=1, counter="sp-q2")
    send(handler, store, "k-sp-q1", r)
    assert [e.reason for e in store.quarantined()] == ["counter_mismatch"]
    moved(store, "k-sp-q1", "sp-q2", at="2026-11-22T04:00:00.000Z")
    results = replay_quarantine(store=store, settings=settings)
    assert [outcome for _, outcome in results] == ["stored"]
    assert store.rating_count() == 1


def test_a_counter_held_once_for_a_day_credits_only_that_day(store, settings):
    """Found by the adversarial review: a kiosk moved to a counter for a day and back could credit
    that counter forever. An assignment counts from when it began until when it ended."""
    handler = handler_for(store, settings)
    moved(store, "k-sp-q1", "vb-q1", at="2021-01-01T00:00:00.000Z")
    moved(store, "k-sp-q1", "sp-q1", at="2021-01-02T00:00:00.000Z")
    then = make_rating(seq=1, counter="vb-q1", pressed_at="2021-01-01T03:00:00.000Z")
    now = [make_rating(seq=i + 2, counter="vb-q1", score=1) for i in range(50)]
    acked = send(handler, store, "k-sp-q1", then, *now)
    assert set(acked) == {then.id} | {r.id for r in now}
    assert store.rating_count() == 1  # only the press made while it stood there
    assert {e.reason for e in store.quarantined(limit=100)} == {"counter_mismatch"}
