"""The standing fuzz suite at the collector's MQTT boundary, through the real handler and a real
store (SQLite and PostgreSQL): generated valid, near-valid and hostile messages.

Invariants: nothing escapes (no exception, no outage on a healthy store); every rating built valid
is stored exactly once; every other rating id is stored or in quarantine, never lost; every
refused message is in quarantine with its bytes; nothing else changes (roll-ups equal raw counts,
no rating at a counter its kiosk was never assigned to).

Seeded (derandomized) so a failure replays. The long campaign through a real broker and a real
`collector serve` is tests/e2e/test_fuzz_serve.py.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from collector.ingest import Acks, MessageHandler
from tests.collector.conftest import query
from tests.fuzzing import KIOSKS, Message, messages, now_utc

RECEIVED = now_utc()


@pytest.fixture
def store(any_store):
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_store


def stored_ids(store, ids):
    marks = ",".join("?" * len(ids))
    return Counter(row[0] for row in query(store, f"SELECT id FROM ratings WHERE id IN ({marks})", ids))


def quarantined_text(store, after_id):
    return b"\n".join(e.payload for e in store.quarantined(after_id=after_id, limit=100_000))


@settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=messages(received_at=RECEIVED))
def test_generated_messages_keep_every_invariant(store, settings, batch: list[Message]):
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    received_at = __import__("kiosk.wire", fromlist=["x"]).format_time(RECEIVED)
    for message in batch:
        last = max((e.id for e in store.quarantined(include_replayed=True, limit=1_000_000)), default=0)
        acks = Acks()
        with store.transaction():
            outcome = handler.handle(message.topic, message.payload, received_at, acks)
        new_entries = store.quarantined(after_id=last, limit=100_000)
        if message.refused_whole:
            assert outcome is not None, message.payload[:300]
        if outcome is not None:
            assert any(e.payload == message.payload for e in new_entries) or outcome == "internal_error"
        if message.kind == "snapshots" and not message.refused_whole:
            assert outcome is None and store.has_snapshot(message.topic.rsplit("/", 1)[1])
        if message.kind != "ratings":
            continue
        if message.valid_ids:
            assert outcome is None, (outcome, message.payload[:300])
            assert set(stored_ids(store, message.valid_ids).values()) == {1}
            assert len(stored_ids(store, message.valid_ids)) == len(set(message.valid_ids))
        if message.item_ids:
            stored = stored_ids(store, message.item_ids)
            kept = quarantined_text(store, last)
            for rating_id in message.item_ids:
                assert stored[rating_id] == 1 or rating_id.encode() in kept, rating_id
                assert stored[rating_id] <= 1
    assert handler.counts.messages >= len(batch)
    # nothing else changes: roll-ups agree with raw rows; nobody credited a counter not theirs
    ((raw,),) = query(store, "SELECT COUNT(*) FROM ratings")
    assert query(store, "SELECT COALESCE(SUM(n), 0) FROM daily") == [(raw,)]
    assert query(store, "SELECT COALESCE(SUM(n), 0) FROM monthly") == [(raw,)]
    for kiosk, counter in query(store, "SELECT DISTINCT kiosk, counter FROM ratings"):
        assert KIOSKS[kiosk] == counter
    assert {k for (k,) in query(store, "SELECT kiosk FROM kiosk_status")} <= set(KIOSKS)
