"""Ingest takes a run of rating messages together (one insert, one roll-up upsert for the run):
the outcome must be exactly what taking them one at a time gives — same ratings stored, same
quarantine entries in the same order, same acks, same counts — on SQLite and on PostgreSQL.

The comparison is property-based over the fuzz suite's generated messages (valid, near-valid and
hostile), seeded so a failure replays; the fall-back when the store refuses a run is shown apart.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.ingest import Acks, MessageHandler
from collector.registry import load_registry
from kiosk import wire
from tests.collector.conftest import ENROLLED_AT, REGISTRY, open_test_store, query
from tests.fuzzing import KIOSKS, Message, messages, now_utc, valid_item
from tests.ratings import make_rating

RECEIVED = now_utc()
RECEIVED_TEXT = wire.format_time(RECEIVED)
TOPICS = wire.Topics()


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request, settings, tmp_path):
    """Two empty stores of one kind: one takes messages one at a time, the other in runs."""
    made = []
    for name in ("one", "run"):
        path = tmp_path / name / "collector.db"
        path.parent.mkdir()
        if request.param == "postgresql":  # pg_url is one database per test: make a second
            from collector.pgstore import PostgresStore

            store = PostgresStore(request.getfixturevalue("postgres").fresh_database())
        else:
            store = open_test_store(request.param, request, path)
        store.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
        made.append(store)
    yield made
    for store in made:
        store.close()


def state(store) -> tuple:
    """What ingest leaves behind, in a form two stores can be compared by."""
    return (
        query(store, "SELECT id, kiosk, counter, score, local_day FROM ratings ORDER BY id"),
        query(store, "SELECT counter, day, score, flagged, n, unsynced FROM daily ORDER BY 1, 2, 3, 4"),
        query(store, "SELECT counter, month, score, flagged, n, unsynced FROM monthly ORDER BY 1, 2, 3, 4"),
        query(store, "SELECT kiosk, install, count, min_seq, max_seq FROM installs ORDER BY 1, 2"),
        [
            (e.reason, e.topic, e.detail, bytes(e.payload))
            for e in store.quarantined(include_replayed=True, limit=1_000_000)
        ],
    )


def acked(acks: Acks) -> dict[str, Counter]:
    return {k: Counter(v) for k, v in acks.ratings.items() if v} | {
        f"{k}/snapshots": Counter(v) for k, v in acks.snapshots.items() if v
    }


@settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=messages(received_at=RECEIVED))
def test_a_run_ends_exactly_as_one_message_at_a_time(two_stores, settings, batch: list[Message]):
    one, run = two_stores
    by_one = MessageHandler(store=one, settings=settings, registry=one.load_registry)
    by_run = MessageHandler(store=run, settings=settings, registry=run.load_registry)
    one_acks, run_acks = Acks(), Acks()
    with one.transaction():
        for message in batch:
            by_one.handle(message.topic, message.payload, RECEIVED_TEXT, one_acks)
    with run.transaction():
        by_run.handle_batch([(m.topic, m.payload) for m in batch], RECEIVED_TEXT, run_acks)
    assert state(run) == state(one)
    assert acked(run_acks) == acked(one_acks)
    for name in ("messages", "stored", "duplicates", "quarantined"):
        assert getattr(by_run.counts, name) == getattr(by_one.counts, name), name
    assert by_run.counts.by_reason == by_one.counts.by_reason


@pytest.fixture
def store(any_store):
    return any_store


def batch_of(kiosk: str, counter: str, n: int, first_seq: int = 1) -> tuple[str, bytes, list[wire.Rating]]:
    ratings = [make_rating(counter=counter, seq=first_seq + i, score=1 + i % 4) for i in range(n)]
    return TOPICS.ratings(kiosk), wire.encode_batch(kiosk, ratings), ratings


def test_a_run_the_store_refuses_is_taken_again_one_message_at_a_time(store, settings, monkeypatch):
    """The store fails (not an outage) on one kiosk's ratings: the run is rolled back and taken again
    message by message, so only that message is quarantined (internal_error) and acked; the others
    are stored and acked; nothing is counted twice."""
    good_a = batch_of("k-vb-q1", "vb-q1", 5)
    poison = batch_of("k-sp-q1", "sp-q1", 3)
    good_b = batch_of("k-vb-q2", "vb-q2", 4)
    real = type(store).add_rating_groups
    calls = []

    def failing(self, groups, **kw):
        calls.append([k for k, _ in groups])
        if any(k == "k-sp-q1" for k, _ in groups):
            raise ValueError("this store cannot take k-sp-q1's ratings")
        return real(self, groups, **kw)

    monkeypatch.setattr(type(store), "add_rating_groups", failing)
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    acks = Acks()
    with store.transaction():
        handler.handle_batch([(t, p) for t, p, _ in (good_a, poison, good_b)], RECEIVED_TEXT, acks)
    assert calls[0] == ["k-vb-q1", "k-sp-q1", "k-vb-q2"]  # tried together first
    assert store.rating_count() == 9
    assert [(e.reason, bytes(e.payload)) for e in store.quarantined()] == [("internal_error", poison[1])]
    for topic, _, ratings in (good_a, poison, good_b):
        kiosk = topic.split("/")[3]
        assert set(acks.ratings[kiosk]) == {r.id for r in ratings}
    assert (handler.counts.stored, handler.counts.quarantined, handler.counts.messages) == (9, 1, 3)
    assert query(store, "SELECT SUM(n) FROM daily") == [(9,)]


def test_a_rating_sent_twice_in_one_run_is_stored_once_and_acked_to_both(store, settings):
    topic, payload, ratings = batch_of("k-vb-q1", "vb-q1", 6)
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    acks = Acks()
    with store.transaction():
        handler.handle_batch([(topic, payload), (topic, payload)], RECEIVED_TEXT, acks)
    assert store.rating_count() == 6
    assert (handler.counts.stored, handler.counts.duplicates) == (6, 6)
    assert Counter(acks.ratings["k-vb-q1"]) == Counter({r.id: 2 for r in ratings})
    assert query(store, "SELECT SUM(n) FROM daily") == [(6,)]
    assert query(store, "SELECT count, min_seq, max_seq FROM installs WHERE kiosk='k-vb-q1'") == [(6, 1, 6)]


def test_a_picture_in_the_same_batch_as_its_rating_finds_it(store, settings):
    """Runs end at the first message that is not a rating, so a picture after its rating is taken
    with the rating already stored."""
    picture = b"\xff\xd8 a picture \xff\xd9"
    with_picture = make_rating(
        counter="vb-q1",
        seq=1,
        snapshot=wire.SnapshotRef(hashlib.sha256(picture).hexdigest(), len(picture)),
        snapshot_error=None,
    )
    others = batch_of("k-vb-q1", "vb-q1", 3, first_seq=2)
    messages = [
        (TOPICS.ratings("k-vb-q1"), wire.encode_batch("k-vb-q1", [with_picture])),
        (others[0], others[1]),
        (TOPICS.snapshot("k-vb-q1", with_picture.id), picture),
        batch_of("k-vb-q2", "vb-q2", 2)[:2],
    ]
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    acks = Acks()
    with store.transaction():
        handler.handle_batch(messages, RECEIVED_TEXT, acks)
    assert store.has_snapshot(with_picture.id)
    assert acks.snapshots["k-vb-q1"] == [with_picture.id]
    assert store.rating_count() == 6
    assert store.quarantined() == []


# Found by a review: what the generated messages above never hold — re-sent messages, one id in
# several messages of a run, an id sent by another kiosk or with other content, pictures between.
PICTURE = b"\xff\xd8 review picture \xff\xd9"


def full_state(store) -> tuple:
    return (
        query(
            store,
            "SELECT id, kiosk, install, seq, counter, unit, score, flag, pressed_at, local_day, clock,"
            " snapshot_sha256, snapshot_bytes, snapshot_error, fw FROM ratings ORDER BY id",
        ),
        query(store, "SELECT counter, day, score, flagged, n, unsynced FROM daily ORDER BY 1, 2, 3, 4"),
        query(store, "SELECT counter, month, score, flagged, n, unsynced FROM monthly ORDER BY 1, 2, 3, 4"),
        query(store, "SELECT kiosk, install, count, min_seq, max_seq FROM installs ORDER BY 1, 2"),
        query(store, "SELECT rating_id FROM snapshots ORDER BY 1"),
        query(
            store,
            "SELECT topic, payload, reason, detail, kiosk, install, seq, bytes FROM quarantine",
        ),
    )[:-1] + (
        sorted(
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in query(store, "SELECT topic, payload, reason, detail, kiosk, install, seq, bytes FROM quarantine")
        ),
    )


@st.composite
def resent_batches(draw):
    kiosks = list(KIOSKS)
    pool = []  # (kiosk, item)
    for _ in range(draw(st.integers(1, 6))):
        kiosk = draw(st.sampled_from(kiosks))
        item = draw(valid_item(KIOSKS[kiosk], received_at=RECEIVED))
        if draw(st.booleans()):
            item.update(
                flag=None,
                snapshot_error=None,
                snapshot={"sha256": hashlib.sha256(PICTURE).hexdigest(), "bytes": len(PICTURE)},
            )
        pool.append((kiosk, item))
    messages = []
    for _ in range(draw(st.integers(2, 8))):
        how = draw(st.sampled_from(["own", "own", "steal", "changed", "picture", "status"]))
        kiosk, item = draw(st.sampled_from(pool))
        if how == "steal":  # another kiosk sends an id it does not own, at its own counter
            thief = draw(st.sampled_from(kiosks))
            item = {**item, "counter": KIOSKS[thief], "score": 1}
            kiosk = thief
        elif how == "changed":  # same id, other content
            item = {**item, "score": 1 + item["score"] % 4, "seq": item["seq"] // 2 or 1}
        elif how == "picture":
            messages.append((f"sat/v1/k/{kiosk}/snapshots/{item['id']}", PICTURE))
            continue
        elif how == "status":
            doc = {"v": 1, "kiosk": kiosk, "state": "online", "at": RECEIVED_TEXT, "fw": "0.1.0"}
            messages.append((f"sat/v1/k/{kiosk}/status", json.dumps(doc).encode()))
            continue
        items = [item] + [draw(st.sampled_from(pool))[1] for _ in range(draw(st.integers(0, 2)))]
        payload = json.dumps({"v": 1, "kiosk": kiosk, "ratings": items}).encode()
        messages.append((f"sat/v1/k/{kiosk}/ratings", payload))
        if draw(st.booleans()):
            messages.append((f"sat/v1/k/{kiosk}/ratings", payload))  # re-sent in the same batch
    return messages


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=resent_batches())
def test_resends_and_foreign_ids_end_the_same_in_a_run(two_stores, settings, batch):
    one, run = two_stores
    by_one = MessageHandler(store=one, settings=settings, registry=one.load_registry)
    by_run = MessageHandler(store=run, settings=settings, registry=run.load_registry)
    one_acks, run_acks = Acks(), Acks()
    with one.transaction():
        for topic, payload in batch:
            by_one.handle(topic, payload, RECEIVED_TEXT, one_acks)
    with run.transaction():
        by_run.handle_batch(batch, RECEIVED_TEXT, run_acks)
    assert full_state(run) == full_state(one)
    assert acked(run_acks) == acked(one_acks)
    assert {k: v for k, v in run_acks.statuses.items() if v} == {k: v for k, v in one_acks.statuses.items() if v}
    for name in ("messages", "stored", "duplicates", "quarantined", "snapshots", "statuses"):
        assert getattr(by_run.counts, name) == getattr(by_one.counts, name), name
    assert by_run.counts.by_reason == by_one.counts.by_reason
    # roll-ups equal raw counts
    assert query(run, "SELECT COALESCE(SUM(n),0) FROM daily") == query(run, "SELECT COUNT(*) FROM ratings")


def test_an_id_stored_from_another_kiosk_is_kept_in_quarantine_not_dropped(store, settings):
    """k-sp-q1 sends a rating whose id k-vb-q1's rating already has (other counter, score, seq): not
    a re-send but a clash. The stored rating stays; the clashing one is acked and kept in
    quarantine as id_conflict — in a run and one message at a time alike."""
    first = make_rating(counter="vb-q1", score=4, pressed_at=RECEIVED_TEXT)
    other = {**first.to_dict(), "counter": "sp-q1", "score": 1, "install": "0badcafe", "seq": 7}
    clash = json.dumps({"v": 1, "kiosk": "k-sp-q1", "ratings": [other]}).encode()
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    acks = Acks()
    with store.transaction():
        handler.handle_batch(
            [(TOPICS.ratings("k-vb-q1"), wire.encode_batch("k-vb-q1", [first])), (TOPICS.ratings("k-sp-q1"), clash)],
            RECEIVED_TEXT,
            acks,
        )
    with store.transaction():  # and again, one message at a time
        handler.handle(TOPICS.ratings("k-sp-q1"), clash, RECEIVED_TEXT, acks)
    assert acks.ratings["k-sp-q1"] == [first.id, first.id]
    assert store.rating_count() == 1
    assert query(store, "SELECT kiosk, counter, score FROM ratings") == [("k-vb-q1", "vb-q1", 4)]
    kept = store.quarantined()
    assert [(e.reason, e.topic) for e in kept] == [("id_conflict", TOPICS.ratings("k-sp-q1"))] * 2
    assert json.loads(kept[0].payload)["ratings"][0]["counter"] == "sp-q1"
    assert (handler.counts.duplicates, handler.counts.by_reason["id_conflict"]) == (0, 2)


def test_a_replayed_id_conflict_stays_in_quarantine(store, settings):
    from collector.ingest import replay_quarantine

    first = make_rating(counter="vb-q1", score=4, pressed_at=RECEIVED_TEXT)
    other = {**first.to_dict(), "counter": "sp-q1", "score": 1}
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    with store.transaction():
        handler.handle(TOPICS.ratings("k-vb-q1"), wire.encode_batch("k-vb-q1", [first]), RECEIVED_TEXT, Acks())
        handler.handle(
            TOPICS.ratings("k-sp-q1"),
            json.dumps({"v": 1, "kiosk": "k-sp-q1", "ratings": [other]}).encode(),
            RECEIVED_TEXT,
            Acks(),
        )
    assert [e.reason for e in store.quarantined()] == ["id_conflict"]
    replay_quarantine(store=store, settings=settings)
    assert [e.reason for e in store.quarantined()] == ["id_conflict"] and store.rating_count() == 1
