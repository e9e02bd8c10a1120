"""Two ingest collectors on one PostgreSQL and one Mosquitto share the load through the shared
subscription; one is SIGKILLed halfway. 20,000 ratings from 200 kiosks: exactly 20,000 stored,
every one acked, roll-ups equal to the raw counts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from collector.localbroker import free_port
from kiosk import wire
from tests.collector.conftest import REGISTRY
from tests.conftest import wait_for
from tests.fuzzing import now_utc
from tests.ratings import make_rating

KIOSKS = 200
PER_KIOSK = 100
COUNTERS = ["vb-q1", "vb-q2", "kyh-q1", "sp-q1", "sp-q2", "tthcc-q1"]


def registry_with_kiosks(path: Path) -> None:
    text = REGISTRY.read_text().split("[[kiosk]]")[0]
    for n in range(KIOSKS):
        text += f'\n[[kiosk]]\nid = "k-t-{n:03d}"\ncounter = "{COUNTERS[n % len(COUNTERS)]}"\n'
    path.write_text(text)


class Fleet:
    """200 kiosks on one MQTT connection: each publishes its ratings in batches and re-sends what
    is not acked after a timeout, as the real kiosk does (its outbox here is a dict)."""

    def __init__(self, port: int) -> None:
        self.unacked: dict[str, dict[str, wire.Rating]] = defaultdict(dict)
        self.acked: set[str] = set()
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fleet", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._ack
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("sat/v1/k/+/acks", qos=1)
        self.client.loop_start()

    def _ack(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        kiosk = message.topic.split("/")[3]
        ack = wire.decode_ack(message.payload)
        with self.lock:
            for rating_id in ack.ratings:
                self.unacked[kiosk].pop(rating_id, None)
                self.acked.add(rating_id)

    def add(self, kiosk: str, ratings: list[wire.Rating]) -> None:
        with self.lock:
            self.unacked[kiosk].update({r.id: r for r in ratings})

    def publish(self, kiosk: str, ratings: list[wire.Rating]) -> None:
        for start in range(0, len(ratings), 50):
            self.client.publish(
                f"sat/v1/k/{kiosk}/ratings", wire.encode_batch(kiosk, ratings[start : start + 50]), qos=1
            )

    def resend_unacked(self) -> int:
        with self.lock:
            waiting = {k: list(v.values()) for k, v in self.unacked.items() if v}
        for kiosk, ratings in waiting.items():
            self.publish(kiosk, ratings)
        return sum(len(v) for v in waiting.values())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def start_collector(
    tmp_path: Path, name: str, broker_port: int, pg_url: str, registry: Path
) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nregistry = "{registry}"\n'
        f'[store]\nurl = "{pg_url}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n'
        f'[ingest]\nclient_id = "collector-{name}"\nbatch_wait_s = 0.05\n'
        f"[http]\nport = {free_port()}\n"
    )
    log = open(tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - the process writes it
    return subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "serve", "--role", "ingest", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_two_ingest_collectors_on_postgresql_one_killed_halfway_store_everything_once(tmp_path, broker, pg_url):
    registry = tmp_path / "registry.toml"
    registry_with_kiosks(registry)
    first = start_collector(tmp_path, "a", broker.port, pg_url, registry)
    second = start_collector(tmp_path, "b", broker.port, pg_url, registry)
    fleet = Fleet(broker.port)
    try:
        logs = [tmp_path / "a.log", tmp_path / "b.log"]
        assert wait_for(lambda: all("subscribed to $share" in p.read_text() for p in logs if p.exists()), 30)
        pressed = now_utc()
        batches = {
            f"k-t-{n:03d}": [
                make_rating(
                    seq=i + 1,
                    counter=COUNTERS[n % len(COUNTERS)],
                    score=1 + (n + i) % 4,
                    pressed_at=wire.format_time(pressed),
                )
                for i in range(PER_KIOSK)
            ]
            for n in range(KIOSKS)
        }
        for kiosk, ratings in batches.items():
            fleet.add(kiosk, ratings)
        kiosks = list(batches)
        for kiosk in kiosks[: KIOSKS // 2]:
            fleet.publish(kiosk, batches[kiosk])
        assert wait_for(lambda: len(fleet.acked) >= 5_000, 60)
        first.kill()  # SIGKILL halfway: what it held unacked is re-sent by the kiosks to the other
        first.wait()
        for kiosk in kiosks[KIOSKS // 2 :]:
            fleet.publish(kiosk, batches[kiosk])
        deadline = time.monotonic() + 120
        while len(fleet.acked) < KIOSKS * PER_KIOSK and time.monotonic() < deadline:
            time.sleep(3)
            fleet.resend_unacked()  # the kiosks' ack timeout
        assert len(fleet.acked) == KIOSKS * PER_KIOSK
        with psycopg.connect(pg_url) as conn:
            (stored,) = conn.execute("SELECT COUNT(*) FROM ratings").fetchone()
            (distinct,) = conn.execute("SELECT COUNT(DISTINCT id) FROM ratings").fetchone()
            raw = dict(conn.execute("SELECT counter, COUNT(*) FROM ratings GROUP BY counter").fetchall())
            rolled = dict(conn.execute("SELECT counter, SUM(n) FROM daily GROUP BY counter").fetchall())
            monthly = dict(conn.execute("SELECT counter, SUM(n) FROM monthly GROUP BY counter").fetchall())
        assert stored == distinct == KIOSKS * PER_KIOSK
        assert rolled == raw == monthly
        assert second.poll() is None
    finally:
        fleet.close()
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
