"""The fuzz suite through the real path: generated messages published to a real Mosquitto and
taken by a real `collector serve` process (its own SQLite file, or a real PostgreSQL database),
then checked in that store.

Every rating built valid is stored exactly once and acked; every rating id of a batch is stored
or in quarantine; every refused message is in quarantine with its bytes; the process lives and
is ready at the end. The examples only publish; a marker rating sent last is acked once every
message before it has been committed, and then everything is checked at once.

`FUZZ_MESSAGES=100000 scripts/test tests/e2e/test_fuzz_serve.py` runs a long campaign (the
figure is a lower bound on the messages sent; the default keeps the test command quick).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import threading
import urllib.request
from collections import Counter

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, seed, settings

from kiosk import wire
from tests.conftest import wait_for
from tests.e2e.conftest import CollectorProcess
from tests.fuzzing import Message, messages, now_utc
from tests.ratings import make_rating

TARGET_MESSAGES = int(os.environ.get("FUZZ_MESSAGES", "400"))


class Publisher:
    """One MQTT client publishing as any kiosk (the test broker has no ACL) and collecting acks."""

    def __init__(self, port: int) -> None:
        self.acked: set[str] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzzer", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.on_message = self._on_ack
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("sat/v1/k/+/acks", qos=1)
        self.client.loop_start()

    def _on_ack(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        ack = wire.decode_ack(message.payload)
        with self._lock:
            self.acked.update(ack.ratings)

    def publish(self, message: Message) -> None:
        self.client.publish(message.topic, message.payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _rows(store_url: str, sql: str) -> list[tuple]:
    """Rows from the collector's store, either kind, with bytes as bytes."""
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            rows = conn.execute(sql).fetchall()
    else:
        conn = sqlite3.connect(f"file:{store_url[len('sqlite:///') :]}?mode=ro", uri=True)
        rows = conn.execute(sql).fetchall()
        conn.close()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_generated_messages_through_broker_and_collector_serve(tmp_path, broker, store, request):
    pg_url = request.getfixturevalue("pg_url") if store == "postgresql" else ""
    collector = CollectorProcess(tmp_path, broker.port, extra=f'[store]\nurl = "{pg_url}"\n' if pg_url else "")
    store_url = pg_url or f"sqlite:///{collector.data_dir / 'collector.db'}"
    collector.start()
    publisher = Publisher(broker.port)
    sent: list[Message] = []
    received_at = now_utc()
    try:
        assert wait_for(lambda: http_status(collector.url + "/readyz") == 200, 30)
        per_example = 8 if TARGET_MESSAGES <= 1000 else 24

        def publish(batch: list[Message]) -> None:
            for message in batch:
                publisher.publish(message)
                sent.append(message)

        # Rounds of seeded examples until the target is reached: round n always generates the same
        # messages, so a failure replays with the same FUZZ_MESSAGES.
        for round_number in itertools.count():
            run = seed(round_number)(
                settings(
                    max_examples=max(10, min(2000, TARGET_MESSAGES // 4)),
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )(given(batch=messages(received_at=received_at, max_size=per_example))(publish))
            )
            run()
            if len(sent) >= TARGET_MESSAGES:
                break
        marker = make_rating(seq=1, counter="vb-q1", pressed_at=wire.format_time(now_utc()))
        publisher.publish(
            Message("sat/v1/k/k-vb-q1/ratings", wire.encode_batch("k-vb-q1", [marker]), "ratings", "k-vb-q1")
        )
        assert wait_for(lambda: marker.id in publisher.acked, timeout_s=120 + len(sent) / 200)
        assert collector.process is not None and collector.process.poll() is None
        assert http_status(collector.url + "/readyz") == 200

        stored = Counter(row[0] for row in _rows(store_url, "SELECT id FROM ratings"))
        pictures = {row[0] for row in _rows(store_url, "SELECT rating_id FROM snapshots")}
        quarantined = [row[0] for row in _rows(store_url, "SELECT payload FROM quarantine")]
        whole = set(quarantined)
        # every rating id anywhere in the quarantine (a set: 100,000 messages are checked below)
        kept = set(
            re.findall(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", b"\n".join(quarantined))
        )
        raw = _rows(store_url, "SELECT COUNT(*) FROM ratings")[0][0]
        rolled = _rows(store_url, "SELECT COALESCE(SUM(n), 0) FROM daily")[0][0]

        valid = [i for m in sent for i in m.valid_ids]
        print(f"\nfuzz through broker and `collector serve`: {len(sent)} messages sent")
        assert valid, "the generator made no valid rating"
        missing = [(i, m.payload[:300]) for m in sent for i in m.valid_ids if stored[i] != 1]
        assert not missing, f"{len(missing)} valid rating(s) not stored exactly once, e.g. {missing[:3]}"
        assert set(valid) <= publisher.acked, "a stored rating was not acked"
        assert all(n == 1 for n in stored.values()), "a rating stored twice"
        for message in sent:
            for rating_id in message.item_ids:
                assert stored[rating_id] == 1 or rating_id.encode() in kept, (rating_id, message.payload[:200])
            if message.kind == "snapshots" and not message.refused_whole:
                assert message.topic.rsplit("/", 1)[1] in pictures, "a matching picture was not stored"
            if message.refused_whole:
                # nothing in it could be stored: the message itself is in quarantine, bytes and all
                assert message.payload in whole or len(message.payload) > 2 * 1024 * 1024, message.payload[:200]
        assert rolled == raw
        print(f"\nfuzz through broker and `collector serve`: {len(sent)} messages, {len(valid)} valid ratings, "
              f"{raw} stored, {len(quarantined)} quarantine entries")  # fmt: skip
    finally:
        publisher.close()
        collector.stop()
        if collector.process is not None and collector.process.returncode not in (0, None, -15):
            pytest.fail(f"collector ended with {collector.process.returncode}: {json.dumps(str(tmp_path))}")
