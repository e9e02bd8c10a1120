"""Ingest against a real Mosquitto and a real SQLite file."""

import hashlib
import json
import time

import paho.mqtt.client as mqtt
import pytest

from collector.ingest import replay_quarantine
from collector.registry import load_registry, registry_from_dict
from kiosk import wire
from kiosk.ids import uuid7
from tests.collector.conftest import REGISTRY
from tests.conftest import wait_for
from tests.ratings import make_rating


def rating(seq=1, counter="vb-q1", score=4, pressed_at="2026-11-22T02:15:02.123Z", **changes):
    return make_rating(seq=seq, counter=counter, score=score, pressed_at=pressed_at, **changes)


def quarantine_reasons(store):
    return [e.reason for e in store.quarantined()]


def test_valid_batch_is_stored_once_and_acked(ingestor, store, fake_kiosk):
    batch = [rating(seq=i + 1, score=1 + i % 4) for i in range(10)]
    payload = wire.encode_batch("k-vb-q1", batch)
    fake_kiosk.publish("ratings", payload)
    fake_kiosk.publish("ratings", payload)  # a re-send: acked again, not stored again
    assert wait_for(lambda: ingestor.handler.counts.duplicates == 10)
    assert wait_for(lambda: fake_kiosk.acked_ratings() == {r.id for r in batch})
    assert store.rating_count() == 10
    assert fake_kiosk.acked_ratings() == {r.id for r in batch}
    assert ingestor.handler.counts.duplicates == 10


def test_daily_rollup_follows_local_days_in_utc_plus_7(ingestor, store, fake_kiosk):
    fake_kiosk.publish(
        "ratings",
        wire.encode_batch(
            "k-vb-q1",
            [
                rating(seq=1, pressed_at="2026-11-21T16:59:59.999Z"),  # 23:59:59 local, 21 Nov
                rating(seq=2, pressed_at="2026-11-21T17:00:00.000Z"),  # 00:00 local, 22 Nov
                rating(seq=3, pressed_at="2026-11-21T18:30:00.000Z"),  # the contract's example: 22 Nov
            ],
        ),
    )
    assert wait_for(lambda: store.rating_count() == 3)
    days = sorted((c.period, c.n) for c in store.counts(["vb-q1"], *_days("2026-11-20", "2026-11-23"), by="day"))
    assert days == [("2026-11-21", 1), ("2026-11-22", 2)]


@pytest.mark.parametrize(
    ("suffix", "payload", "reason"),
    [
        ("ratings", b"\x00\x01 definitely not json", "not_json"),
        ("ratings", json.dumps({"v": 2, "kiosk": "k-vb-q1", "ratings": []}).encode(), "bad_version"),
        ("ratings", json.dumps({"kiosk": "k-vb-q1", "ratings": []}).encode(), "missing_field"),
        (
            "ratings",
            json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": [{"id": 5}]}).encode(),
            "missing_field",
        ),
        (
            "ratings",
            json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": [{**rating().to_dict(), "score": 7}]}).encode(),
            "bad_score",
        ),
        (
            "ratings",
            json.dumps({"v": 1, "kiosk": "k-vb-q1", "ratings": [{**rating().to_dict(), "seq": "one"}]}).encode(),
            "bad_field",
        ),
        ("ratings", wire.encode_batch("k-vb-q2", [rating()]), "kiosk_mismatch"),
        (
            "ratings",
            json.dumps(
                {"v": 1, "kiosk": "k-vb-q1", "ratings": [rating(seq=i + 1).to_dict() for i in range(501)]}
            ).encode(),
            "batch_too_big",
        ),
        ("ratings", wire.encode_batch("k-vb-q1", [rating(counter="no-such-counter")]), "unknown_counter"),
        ("status", b'{"v":1,"kiosk":"k-vb-q1","state":"dancing"}', "bad_field"),
    ],
)
def test_bad_messages_are_quarantined_with_their_reason(ingestor, store, fake_kiosk, suffix, payload, reason):
    fake_kiosk.publish(suffix, payload)
    assert wait_for(lambda: store.quarantined())
    entry = store.quarantined()[0]
    assert entry.reason == reason
    assert entry.topic.startswith("sat/v1/k/k-vb-q1/")
    assert entry.received_at and entry.detail
    assert store.rating_count() == 0
    # the collector keeps serving
    good = rating(seq=9)
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [good]))
    assert wait_for(lambda: good.id in fake_kiosk.acked_ratings())


def test_quarantined_ratings_are_acked_so_the_kiosk_stops_resending(ingestor, store, fake_kiosk):
    bad = rating(counter="no-such-counter")
    good = rating(seq=2)
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [bad, good]))
    assert wait_for(lambda: fake_kiosk.acked_ratings() == {bad.id, good.id})
    assert store.rating_count() == 1


def test_spoofed_kiosk_id_is_refused(ingestor, store, fake_kiosk):
    # A kiosk publishing on its own topic a batch that claims another kiosk's name.
    fake_kiosk.publish("ratings", wire.encode_batch("k-sp-q1", [rating(counter="sp-q1")]))
    assert wait_for(lambda: store.quarantined())
    assert store.quarantined()[0].reason == "kiosk_mismatch"
    assert store.rating_count() == 0


def test_unknown_kiosk_is_quarantined_then_replayed_after_the_registry_is_fixed(ingestor, store, settings, fake_kiosk):
    # Pressed now: a press from before the kiosk's first enrolment - 1 day is time_implausible (a
    # fixed date here made this test fail from the day after it was written).
    newcomer = rating(counter="vb-q1", pressed_at=wire.format_epoch(time.time()))
    fake_kiosk.publish("ratings", wire.encode_batch("k-new-1", [newcomer]), kiosk="k-new-1")
    assert wait_for(lambda: store.quarantined())
    assert store.quarantined()[0].reason == "unknown_kiosk"
    assert replay_quarantine(store=store, settings=settings)[0][1] == "still unknown_kiosk"
    doc = load_registry(REGISTRY).to_dict()
    doc["kiosk"].append({"id": "k-new-1", "counter": "vb-q1"})
    store.replace_registry(registry_from_dict(doc))
    assert replay_quarantine(store=store, settings=settings)[0][1] == "stored"
    assert store.rating_count() == 1
    assert store.quarantined() == []
    assert len(store.quarantined(include_replayed=True)) == 1


def test_snapshot_is_stored_when_its_hash_matches(ingestor, store, fake_kiosk, settings):
    picture = b"\xff\xd8\xff\xe0 a jpeg"
    with_picture = rating(
        snapshot=wire.SnapshotRef(hashlib.sha256(picture).hexdigest(), len(picture)), snapshot_error=None
    )
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [with_picture]))
    assert wait_for(lambda: with_picture.id in fake_kiosk.acked_ratings())
    fake_kiosk.publish(f"snapshots/{with_picture.id}", picture)
    assert wait_for(lambda: with_picture.id in fake_kiosk.acked_snapshots())
    path = store.snapshot_path(with_picture.id)
    assert path and open(path, "rb").read() == picture
    assert path.startswith(str(settings.snapshot_dir))


def test_snapshot_hash_mismatch_is_quarantined_not_stored(ingestor, store, fake_kiosk):
    announced = rating(snapshot=wire.SnapshotRef("ab" * 32, 10), snapshot_error=None)
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [announced]))
    assert wait_for(lambda: announced.id in fake_kiosk.acked_ratings())
    fake_kiosk.publish(f"snapshots/{announced.id}", b"other bytes")
    assert wait_for(lambda: store.quarantined())
    assert store.quarantined()[0].reason == "snapshot_mismatch"
    assert store.snapshot_path(announced.id) is None
    orphan = uuid7()
    fake_kiosk.publish(f"snapshots/{orphan}", b"x")
    assert wait_for(lambda: len(store.quarantined()) == 2)
    assert store.quarantined()[1].reason == "snapshot_orphan"


def test_status_is_kept_with_online_offline_history(ingestor, store, fake_kiosk):
    online = {
        "kiosk": "k-vb-q1",
        "state": "online",
        "at": "2026-11-22T02:16:00.000Z",
        "backlog": {"ratings": 3, "snapshots": 1},
        "camera": "ok",
    }
    fake_kiosk.publish("status", wire.encode_status(online))
    fake_kiosk.publish("status", wire.offline_will("k-vb-q1"))
    fake_kiosk.publish("status", wire.encode_status({**online, "at": "2026-11-22T03:00:00.000Z"}))
    assert wait_for(lambda: len(store.transitions("k-vb-q1")) == 3)
    assert [s for s, _ in store.transitions("k-vb-q1")] == ["online", "offline", "online"]
    assert store.kiosk_statuses()["k-vb-q1"]["backlog"] == {"ratings": 3, "snapshots": 1}


def test_every_online_status_is_answered_with_the_collectors_time(ingestor, store, fake_kiosk):
    """CONTRACT additions, time in acks: the answer echoes the status's probe and carries "at"."""
    online = {"kiosk": "k-vb-q1", "state": "online", "at": "2000-01-01T00:00:00.000Z"}  # a kiosk without NTP
    before = time.time()
    fake_kiosk.publish("status", wire.encode_status({**online, "probe": "00112233aabbccdd"}))
    assert wait_for(lambda: fake_kiosk.acks)
    (answer,) = fake_kiosk.acks
    assert answer.status == "00112233aabbccdd"
    assert answer.ratings == answer.snapshots == ()
    assert before - 0.01 <= answer.at <= time.time() + 0.01
    # A kiosk of the first v1 (no probe) is answered too; a will (offline) is not.
    fake_kiosk.publish("status", wire.encode_status(online))
    fake_kiosk.publish("status", wire.offline_will("k-vb-q1"))
    assert wait_for(lambda: store.kiosk_statuses()["k-vb-q1"]["state"] == "offline")
    time.sleep(0.3)
    assert [a.status for a in fake_kiosk.acks] == ["00112233aabbccdd", None]
    # Rating acks carry the time as well.
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [rating()]))
    assert wait_for(lambda: fake_kiosk.acked_ratings())
    assert fake_kiosk.acks[-1].at is not None


def test_seq_gaps_are_reported_as_possibly_missing(ingestor, store, fake_kiosk):
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [rating(seq=s) for s in (1, 2, 5, 6)]))
    assert wait_for(lambda: store.rating_count() == 4)
    (install,) = store.installs()
    assert install.possibly_missing == 2


def _days(a, b):
    from datetime import date

    return date.fromisoformat(a), date.fromisoformat(b)


def test_the_last_selftest_survives_later_statuses(ingestor, store, fake_kiosk):
    tested = {"kiosk": "k-vb-q1", "state": "offline", "selftest": {"at": "2026-11-22T02:00:00.000Z", "ok": True}}
    fake_kiosk.publish("status", wire.encode_status(tested))
    fake_kiosk.publish("status", wire.encode_status({"kiosk": "k-vb-q1", "state": "online", "selftest": None}))
    assert wait_for(lambda: store.kiosk_statuses().get("k-vb-q1", {}).get("state") == "online")
    assert store.kiosk_statuses()["k-vb-q1"]["selftest"]["ok"] is True


def test_ratings_and_pictures_sent_retained_are_taken_then_cleared_off_the_broker(ingestor, store, fake_kiosk, broker):
    """Found by the adversarial review: every picture sent with the retain flag took a retained
    slot in the broker's memory for good. The collector takes it and clears it."""
    picture = b"\xff\xd8 a retained picture \xff\xd9"
    digest = hashlib.sha256(picture).hexdigest()
    rating = make_rating(seq=1, snapshot=wire.SnapshotRef(digest, len(picture)), snapshot_error=None)
    topics = wire.Topics()
    client = fake_kiosk.client
    client.publish(
        topics.ratings("k-vb-q1"), wire.encode_batch("k-vb-q1", [rating]), qos=1, retain=True
    ).wait_for_publish(5)
    assert wait_for(lambda: rating.id in fake_kiosk.acked_ratings())
    client.publish(topics.snapshot("k-vb-q1", rating.id), picture, qos=1, retain=True).wait_for_publish(5)
    assert wait_for(lambda: rating.id in fake_kiosk.acked_snapshots())
    assert store.rating_count() == 1 and store.has_snapshot(rating.id)
    assert wait_for(lambda: ingestor.handler.counts.retained_cleared == 2)
    # a new subscriber gets no retained message under the kiosks' topics
    seen: list[str] = []
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="probe", protocol=mqtt.MQTTv5)
    probe.on_message = lambda c, u, m: seen.append(m.topic)
    probe.connect("127.0.0.1", broker.port)
    probe.subscribe("sat/v1/k/#", qos=1)
    probe.loop_start()
    time.sleep(1.0)
    probe.loop_stop()
    probe.disconnect()
    assert seen == []
    assert store.quarantined() == []  # the clearing messages are not taken as empty ratings
