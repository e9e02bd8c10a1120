"""No message can stop ingest: poison payloads, messages that make the code or the store fail by
themselves, and a real store outage — against a real Mosquitto and a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import time

from fastapi.testclient import TestClient

from collector.ingest import Acks, MessageHandler
from collector.store import SqliteStore
from collector.web import create_app
from kiosk import wire
from tests.conftest import wait_for
from tests.ratings import make_rating

GOOD = {**make_rating(seq=1).to_dict()}


def batch(*items: object, kiosk: str = "k-vb-q1") -> bytes:
    return json.dumps({"v": 1, "kiosk": kiosk, "ratings": list(items)}).encode()


NOW = wire.format_epoch(time.time())  # when this module was imported

POISONS = {
    # seq = 2^64 once raised OverflowError in the SQLite insert and stopped all ingest
    "seq_2_64": ("ratings", batch({**make_rating(seq=2).to_dict(), "seq": 2**64})),
    # 50,000 nested "[" once raised RecursionError from json.loads
    "deep_nesting": ("ratings", b"[" * 50_000),
    # a lone surrogate in a status fw once raised UnicodeEncodeError in record_status
    "surrogate_status": (
        "status",
        b'{"v":1,"kiosk":"k-vb-q1","state":"online","at":"2026-11-22T02:16:00.000Z","fw":"\\ud800"}',
    ),
    # … and in one bad item of a good batch, in _quarantine_item
    "surrogate_item": (
        "ratings",
        batch(
            {**make_rating(seq=3, pressed_at=NOW).to_dict(), "fw": "\ud800"},
            make_rating(seq=4, pressed_at=NOW).to_dict(),  # now: a date days before enrolment is implausible
        ).replace(b"\\\\ud800", b"\\ud800"),
    ),
}


def test_each_poison_payload_is_quarantined_and_the_next_good_rating_is_stored(ingestor, store, fake_kiosk):
    for suffix, payload in POISONS.values():
        fake_kiosk.publish(suffix, payload)
    good = make_rating(seq=10)
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [good]))
    assert wait_for(lambda: good.id in fake_kiosk.acked_ratings())
    reasons = sorted(e.reason for e in store.quarantined())
    # the surrogate item alone is refused; its neighbour (seq 4) is stored with the good one
    assert reasons == sorted(["bad_field", "too_deep", "bad_text", "bad_text"])
    assert store.rating_count() == 2
    assert ingestor.outage is None


def test_a_good_item_beside_a_surrogate_item_is_stored_and_both_acked(ingestor, store, fake_kiosk):
    bad, ok = make_rating(seq=1), make_rating(seq=2)
    payload = batch({**bad.to_dict(), "fw": "\ud800"}, ok.to_dict()).replace(b"\\\\ud800", b"\\ud800")
    assert b"\\ud800" in payload
    fake_kiosk.publish("ratings", payload)
    assert wait_for(lambda: fake_kiosk.acked_ratings() == {bad.id, ok.id})
    assert store.rating_count() == 1
    (entry,) = store.quarantined()
    assert entry.reason == "bad_text"
    # kept as a replayable one-rating batch whose bytes still hold the surrogate, escaped
    assert json.loads(entry.payload)["ratings"][0]["fw"] == "\ud800"


class BrokenOnce(SqliteStore):
    """A real store with a defect for one counter's ratings, standing in for a bug nobody knows yet."""

    def add_ratings(self, kiosk, ratings, **kw):  # type: ignore[no-untyped-def]
        if any(r.counter == "vb-q2" for r in ratings):
            # half-written, then failing: the savepoint must take the half back
            super().add_ratings(kiosk, ratings, **kw)
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return super().add_ratings(kiosk, ratings, **kw)


def test_a_message_that_breaks_the_store_is_quarantined_as_internal_error_and_the_rest_go_on(settings, store):
    broken = BrokenOnce(settings.data_dir / "collector.db")
    handler = MessageHandler(store=broken, settings=settings, registry=broken.load_registry)
    first, poison, last = make_rating(seq=1), make_rating(seq=2, counter="vb-q2"), make_rating(seq=3)
    acks = Acks()
    with broken.transaction():
        for r in (first, poison, last):
            kiosk = "k-vb-q2" if r is poison else "k-vb-q1"
            handler.handle(f"sat/v1/k/{kiosk}/ratings", wire.encode_batch(kiosk, [r]), "2026-11-22T03:00:00.000Z", acks)
    assert store.rating_count() == 2  # the poison's half-written insert was rolled back
    (entry,) = store.quarantined()
    assert entry.reason == "internal_error"
    assert "OverflowError" in entry.detail
    assert entry.payload == wire.encode_batch("k-vb-q2", [poison])  # the raw bytes
    assert acks.ratings["k-vb-q2"] == [poison.id]
    assert acks.ratings["k-vb-q1"] == [first.id, last.id]
    broken.close()


def test_a_store_outage_acks_nothing_pauses_says_why_in_readyz_and_resumes(ingestor, store, fake_kiosk, settings):
    app = create_app(settings, store, ingest_health=ingestor.health)
    web = TestClient(app)
    assert web.get("/readyz").json()["ready"] is True
    # A real SQLITE_FULL: the ingest connection may not grow the file by one more page.
    conn: sqlite3.Connection = ingestor.store.conn  # type: ignore[attr-defined]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")
    ratings = [make_rating(seq=i + 1) for i in range(300)]
    fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", ratings))
    assert wait_for(lambda: ingestor.outage is not None)
    assert "full" in ingestor.outage
    answer = web.get("/readyz")
    assert answer.status_code == 503
    assert any("store outage" in p for p in answer.json()["problems"])
    assert fake_kiosk.acked_ratings() == set()
    assert store.rating_count() == 0
    assert store.quarantined() == []  # an outage is not the message's fault
    conn.execute("PRAGMA max_page_count=1073741823")
    assert wait_for(lambda: fake_kiosk.acked_ratings() == {r.id for r in ratings}, timeout_s=40)
    assert store.rating_count() == 300
    assert wait_for(lambda: web.get("/readyz").status_code == 200)


def test_postgresql_going_away_pauses_ingest_and_it_resumes_on_a_new_connection(ingest_settings, pg_url, fake_kiosk):
    import psycopg

    from collector.ingest import Ingestor
    from collector.pgstore import PostgresStore
    from collector.registry import load_registry
    from tests.collector.conftest import ENROLLED_AT, REGISTRY

    store = PostgresStore(pg_url)
    store.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    ingestor = Ingestor(settings=ingest_settings, store=store)
    ingestor.start()
    try:
        assert wait_for(lambda: ingestor.connected)
        first = make_rating(seq=1)
        fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [first]))
        assert wait_for(lambda: first.id in fake_kiosk.acked_ratings())
        # The database server drops the collector's connection (a restart, a failover).
        database = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        second = make_rating(seq=2)
        fake_kiosk.publish("ratings", wire.encode_batch("k-vb-q1", [second]))
        assert wait_for(lambda: second.id in fake_kiosk.acked_ratings(), timeout_s=30)
        check = PostgresStore(pg_url)
        assert check.rating_count() == 2
        assert check.quarantined() == []
        check.close()
    finally:
        ingestor.stop()
        store.close()
