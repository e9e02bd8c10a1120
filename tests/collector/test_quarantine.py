"""The quarantine: every entry reachable by replay, oversized batches split, bounded disk use,
and quarantined ratings not mistaken for missing ones — on a real SQLite file."""

from __future__ import annotations

import json

import pytest

from collector.ingest import Acks, MessageHandler, replay_quarantine
from collector.registry import KioskEntry, Registry
from collector.store import MAX_QUARANTINE_PAYLOAD
from kiosk import wire
from tests.ratings import make_rating

RECEIVED = "2026-11-22T03:00:00.000Z"


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


def handle(store, settings, topic, payload, received_at=RECEIVED):
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    acks = Acks()
    with store.transaction():
        outcome = handler.handle(topic, payload, received_at, acks)
    return outcome, acks


def test_replay_reaches_entries_behind_a_thousand_that_still_fail(store, settings):
    with store.transaction():
        for _ in range(1200):
            store.add_quarantine("sat/v1/k/k-vb-q1/ratings", b"not json", "not_json", "x", RECEIVED)
    # then a rating from a kiosk not registered yet …
    late = make_rating(seq=1, counter="vb-q1")
    handle(store, settings, "sat/v1/k/k-new-9/ratings", wire.encode_batch("k-new-9", [late]))
    assert store.quarantined(limit=5000)[-1].reason == "unknown_kiosk"
    registry = store.load_registry()
    store.replace_registry(
        Registry.build(
            registry.units.values(),
            registry.counters.values(),
            [*registry.kiosks.values(), KioskEntry("k-new-9", "vb-q1")],
        ),
        at="2026-01-01T00:00:00.000Z",
    )
    results = replay_quarantine(store=store, settings=settings, page=500)
    assert len(results) == 1201
    assert results[-1][1] == "stored"
    assert store.rating_count() == 1


def test_an_oversized_batch_is_split_into_replayable_items_and_all_are_acked(store, settings):
    ratings = [make_rating(seq=i + 1) for i in range(501)]
    payload = json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": [r.to_dict() for r in ratings]}).encode()
    outcome, acks = handle(store, settings, "sat/v1/k/k-vb-q1/ratings", payload)
    assert acks.ratings["k-vb-q1"] == [r.id for r in ratings]
    entries = store.quarantined(limit=1000)
    assert len(entries) == 501
    assert {e.reason for e in entries} == {"batch_too_big"}
    results = replay_quarantine(store=store, settings=settings)
    assert {o for _, o in results} == {"stored"}
    assert store.rating_count() == 501
    assert store.quarantined() == []


def test_a_huge_payload_is_kept_cut_with_its_length_and_hash(store, settings):
    payload = b"\xff" * (MAX_QUARANTINE_PAYLOAD + 10)
    handle(store, settings, "sat/v1/k/k-vb-q1/snapshots/" + make_rating().id, payload)
    (entry,) = store.quarantined()
    assert entry.reason == "snapshot_too_big"
    assert len(entry.payload) == MAX_QUARANTINE_PAYLOAD
    assert f"of {MAX_QUARANTINE_PAYLOAD + 10} bytes, sha256" in entry.detail


def test_old_entries_expire_and_the_oldest_go_over_the_cap_and_both_are_counted(store, settings):
    with store.transaction():
        for day in range(1, 6):
            store.add_quarantine("t", b"x" * 1000, "not_json", "", f"2026-01-0{day}T00:00:00.000Z")
        for day in range(1, 6):
            store.add_quarantine("t", b"y" * 1000, "bad_field", "", f"2026-06-0{day}T00:00:00.000Z")
    dropped = store.expire_quarantine(older_than="2026-02-01T00:00:00.000Z", max_bytes=3000)
    assert dropped == {("not_json", "expired"): 5, ("bad_field", "over_quota"): 2}
    stats = store.quarantine_stats()
    assert (stats.entries, stats.payload_bytes) == (3, 3000)
    store.expire_quarantine(older_than="2026-02-01T00:00:00.000Z", max_bytes=2000)
    assert store.quarantine_stats().dropped == {("not_json", "expired"): 5, ("bad_field", "over_quota"): 3}
    assert [e.received_at[:10] for e in store.quarantined()] == ["2026-06-04", "2026-06-05"]


def test_a_quarantined_rating_is_not_counted_as_possibly_missing(store, settings):
    ratings = [make_rating(seq=i + 1) for i in range(5)]
    ratings[2] = make_rating(seq=3, counter="sp-q1")  # refused: k-vb-q1 was never at sp-q1
    handle(store, settings, "sat/v1/k/k-vb-q1/ratings", wire.encode_batch("k-vb-q1", ratings))
    assert [e.reason for e in store.quarantined()] == ["counter_mismatch"]
    (install,) = store.installs()
    assert (install.count, install.max_seq, install.possibly_missing) == (4, 5, 0)
    # and a real gap is still seen
    handle(store, settings, "sat/v1/k/k-vb-q1/ratings", wire.encode_batch("k-vb-q1", [make_rating(seq=8)]))
    (install,) = store.installs()
    assert install.possibly_missing == 2


# --- found by the adversarial review (helper, 2026-11-22) --------------------------------------


def test_a_million_zeros_in_an_oversized_batch_is_one_quarantine_entry_not_a_million(store, settings):
    payload = b'{"v":1,"kiosk":"k-vb-q1","ratings":[' + b",".join([b"0"] * 1_000_000) + b"]}"
    outcome, _ = handle(store, settings, "sat/v1/k/k-vb-q1/ratings", payload)
    assert outcome == "batch_too_big"
    assert [e.reason for e in store.quarantined()] == ["batch_too_big"]


def test_a_status_time_in_the_year_9999_is_refused_and_pages_never_fail_on_a_stored_one(store, settings):
    from collector.formats import moment

    for field in ('"at"', '"backlog":{"ratings":1,"snapshots":0,"oldest_at"', '"selftest":{"ok":true,"at"'):
        close = "}" * field.count("{")
        doc = f'{{"v":1,"kiosk":"k-vb-q1","state":"online",{field}:"9999-12-31T23:59:59.999Z"{close}}}'
        outcome, _ = handle(store, settings, "sat/v1/k/k-vb-q1/status", doc.encode())
        assert outcome == "bad_field", doc
    assert store.kiosk_statuses() == {}
    assert moment("9999-12-31T23:59:59.999Z", settings.tz) == "9999-12-31T23:59:59.999Z"


def test_utf16_json_and_a_trailing_newline_in_an_id_are_refused(store, settings):
    deep = {"v": 1, "kiosk": "k-vb-q1", "state": "online", "x": "\u2241" + "[" * 3}
    outcome, _ = handle(store, settings, "sat/v1/k/k-vb-q1/status", json.dumps(deep).encode("utf-16"))
    assert outcome == "not_json"
    item = {**make_rating(seq=5).to_dict(), "install": "a1b2c3d4\n"}
    outcome, acks = handle(store, settings, "sat/v1/k/k-vb-q1/ratings", wire_batch(item))
    assert store.rating_count() == 0 and [e.reason for e in store.quarantined()][-1] == "bad_field"


def wire_batch(*items: object) -> bytes:
    return json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": list(items)}).encode()
