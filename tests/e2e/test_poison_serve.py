"""The poison payloads of the hardening issue, sent to a running `collector serve`: the next good
rating is stored within seconds — and again after a restart, when the broker delivers the
poison messages a second time (they were queued for the collector's session while it was down)."""

from __future__ import annotations

import sqlite3

import pytest

from kiosk import wire
from tests.collector.test_poison import POISONS
from tests.conftest import wait_for
from tests.e2e.conftest import CollectorProcess
from tests.e2e.test_fuzz_serve import Publisher, http_status
from tests.fuzzing import Message, now_utc
from tests.ratings import make_rating


def good_rating(seq: int) -> tuple[wire.Rating, Message]:
    rating = make_rating(seq=seq, counter="vb-q1", pressed_at=wire.format_time(now_utc()))
    return rating, Message("sat/v1/k/k-vb-q1/ratings", wire.encode_batch("k-vb-q1", [rating]), "ratings", "k-vb-q1")


def stored(collector: CollectorProcess) -> int:
    db = sqlite3.connect(f"file:{collector.data_dir / 'collector.db'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
def test_poison_payloads_leave_serve_storing_the_next_good_rating_also_after_a_restart(tmp_path, broker):
    collector = CollectorProcess(tmp_path, broker.port)
    collector.start()
    publisher = Publisher(broker.port)
    try:
        assert wait_for(lambda: http_status(collector.url + "/readyz") == 200, 30)
        for suffix, payload in POISONS.values():
            publisher.publish(Message(f"sat/v1/k/k-vb-q1/{suffix}", payload, suffix, "k-vb-q1"))
        first, message = good_rating(100)
        publisher.publish(message)
        assert wait_for(lambda: first.id in publisher.acked, 10)

        # Down: the broker queues the poisons (and a good rating) for the collector's session.
        collector.stop()
        for suffix, payload in POISONS.values():
            publisher.publish(Message(f"sat/v1/k/k-vb-q1/{suffix}", payload, suffix, "k-vb-q1"))
        second, message = good_rating(101)
        publisher.publish(message)
        collector.start()
        assert wait_for(lambda: second.id in publisher.acked, 30)
        # Ingest may ack before the web server listens (it failed so once under load): ready within 30 s.
        assert wait_for(lambda: http_status(collector.url + "/readyz") == 200, 30)
        # two good ratings + the good neighbour of the surrogate item (the same rating both times)
        assert stored(collector) == 3
    finally:
        publisher.close()
        collector.stop()
