"""Kiosk benchmarks (figures, not pass/fail): press → committed, press → published,
draining a 100,000-rating backlog through a real Mosquitto into the real collector, and the
kiosk process's memory and CPU when idle with the camera open.

    .venv/bin/python scripts/bench_kiosk.py [--backlog 100000] [--presses 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

from collector.config import settings_from_dict as collector_settings  # noqa: E402
from collector.ingest import Ingestor  # noqa: E402
from collector.localbroker import LocalBroker  # noqa: E402
from collector.registry import Counter, KioskEntry, Registry, Unit  # noqa: E402
from collector.store import SqliteStore  # noqa: E402
from kiosk import wire  # noqa: E402
from kiosk.clock import SystemClock  # noqa: E402
from kiosk.config import settings_from_dict  # noqa: E402
from kiosk.outbox import SqliteOutbox  # noqa: E402
from kiosk.publisher import OfflinePublisher  # noqa: E402
from kiosk.service import Kiosk  # noqa: E402
from kiosk.simulate import fake_gpio_panel  # noqa: E402

PINS = (17, 27, 22, 23)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kiosk_settings(folder: Path, port: int, kiosk_id: str = "k-bench") -> object:
    return settings_from_dict(
        {
            "kiosk_id": kiosk_id,
            "counter": "bench-q1",
            "data_dir": str(folder),
            "mqtt": {"host": "127.0.0.1", "port": port},
            "panel": {"pins": list(PINS), "lockout_s": 0, "debounce_s": 0, "max_per_minute": 10**9},
            "clock": {"assume_synced": True},
            "outbox": {"ack_timeout_s": 60},
        },
        base_dir=folder,
    )


def bench_commit(tmp: Path, presses: int) -> None:
    settings = kiosk_settings(tmp / "commit", 1)  # no broker needed
    panel, factory = fake_gpio_panel(PINS)
    kiosk = Kiosk(
        settings=settings,
        panel=panel,
        camera=None,
        clock=SystemClock(assume_synced=True),
        publisher=OfflinePublisher(),  # the press path only: nothing delivered
    )
    kiosk.start()
    took = []
    for i in range(presses):
        pin = factory.pin(PINS[i % 4])
        start = time.perf_counter()
        pin.drive_low()  # the panel callback queues the press …
        kiosk.run_once(timeout_s=1.0)  # … and the loop commits it (WAL, synchronous=FULL)
        took.append(time.perf_counter() - start)
        pin.drive_high()
    assert kiosk.outbox.backlog().ratings == presses
    kiosk.close()
    print(
        f"press → committed in outbox   n={presses}: p50 {pct(took, 0.5) * 1e3:.2f} ms, "
        f"p99 {pct(took, 0.99) * 1e3:.2f} ms, max {max(took) * 1e3:.2f} ms"
    )


class Collector:
    """The real collector's ingest on a throw-away store with one bench counter and kiosks."""

    def __init__(self, tmp: Path, port: int, kiosks: list[str]) -> None:
        self.settings = collector_settings(
            {
                "data_dir": str(tmp / "collector"),
                "mqtt": {"host": "127.0.0.1", "port": port},
                "ingest": {"client_id": "collector-bench", "batch_messages": 50, "batch_wait_s": 0.05},
            },
            base_dir=tmp,
        )
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = SqliteStore(self.settings.data_dir / "collector.db")
        self.store.replace_registry(
            Registry.build(
                [Unit("B", "Bench unit", "province")],
                [Counter("bench-q1", "B", "Bench counter")],
                [KioskEntry(k, "bench-q1") for k in kiosks],
            )
        )
        self.ingestor = Ingestor(settings=self.settings, store=SqliteStore(self.settings.data_dir / "collector.db"))
        self.ingestor.start()

    def stop(self) -> None:
        self.ingestor.stop()
        self.store.close()


def bench_publish(tmp: Path, broker: LocalBroker, presses: int) -> None:
    received: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(client, userdata, message):  # noqa: ANN001
        now = time.perf_counter()
        batch = wire.decode_batch(message.payload)
        with lock:
            for r in batch.ratings:
                received.setdefault(r.id, now)
        client.publish(wire.Topics().acks(batch.kiosk), wire.encode_ack([r.id for r in batch.ratings]), qos=1)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("sat/v1/k/+/ratings", qos=1)
    sub.loop_start()
    settings = kiosk_settings(tmp / "publish", broker.port, "k-bench-pub")
    panel, factory = fake_gpio_panel(PINS)
    kiosk = Kiosk(settings=settings, panel=panel, camera=None, clock=SystemClock(assume_synced=True))
    kiosk.start()
    time.sleep(1.0)
    took = []
    for i in range(presses):
        pin = factory.pin(PINS[i % 4])
        start = time.perf_counter()
        pin.drive_low()
        kiosk.run_once(timeout_s=1.0)
        pin.drive_high()
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline:
            with lock:
                if len(received) > i:
                    break
            time.sleep(0.0002)
        took.append(max(received.values()) - start)
    kiosk.close()
    sub.loop_stop()
    print(
        f"press → received by a subscriber (loopback) n={presses}: p50 {pct(took, 0.5) * 1e3:.2f} ms, "
        f"p99 {pct(took, 0.99) * 1e3:.2f} ms"
    )


def bench_drain(tmp: Path, broker: LocalBroker, backlog: int) -> None:
    folder = tmp / "drain"
    settings = kiosk_settings(folder, broker.port, "k-bench-drain")
    outbox = SqliteOutbox(settings.outbox_path)
    base = time.time() - backlog
    with outbox._transaction() as conn:  # a week offline, filled fast for the benchmark
        conn.executemany(
            "INSERT INTO ratings(seq, id, install, counter, score, flag, pressed_epoch, clock, boot_id,"
            " since_boot_s, snapshot_state, snapshot_error, fw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    i + 1,
                    _uuid(i),
                    outbox.install_id,
                    "bench-q1",
                    1 + i % 4,
                    None,
                    base + i,
                    "synced",
                    "b",
                    1.0,
                    "error",
                    "camera_disabled",
                    "0.1.0",
                )
                for i in range(backlog)
            ],
        )
        conn.execute("UPDATE meta SET value=? WHERE key='next_seq'", (str(backlog + 1),))
    outbox.close()
    collector = Collector(tmp, broker.port, ["k-bench-drain", "k-bench-pub", "k-bench-rss"])
    time.sleep(0.5)
    panel, _ = fake_gpio_panel(PINS)
    start = time.perf_counter()
    kiosk = Kiosk(settings=settings, panel=panel, camera=None, clock=SystemClock(assume_synced=True))
    kiosk.start()
    while kiosk.outbox.backlog().ratings:
        time.sleep(0.2)
    took = time.perf_counter() - start
    stored = collector.store.rating_count()
    kiosk.close()
    collector.stop()
    print(
        f"backlog drain                 {backlog} ratings in {took:.1f} s = {backlog / took:,.0f} ratings/s "
        f"(kiosk → Mosquitto → collector → SQLite → ack), stored {stored} (exactly once: {stored == backlog}), "
        f"{kiosk.publisher.published_batches} batches"
    )


def bench_memory(tmp: Path, broker: LocalBroker, idle_s: float) -> None:
    video = tmp / "counter.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for i in range(30):
        writer.write(np.full((480, 640, 3), i * 8, np.uint8))
    writer.release()
    folder = tmp / "rss"
    folder.mkdir()
    conf = folder / "kiosk.toml"
    conf.write_text(
        f'kiosk_id = "k-bench-rss"\ncounter = "bench-q1"\ndata_dir = "{folder}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n[camera]\nsource = "{video}"\n'
        f"[clock]\nassume_synced = true\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--fake-hardware", "--config", str(conf)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    time.sleep(3)
    proc.stdin.write(b"1\n")  # one press: the camera is now open
    proc.stdin.flush()
    time.sleep(3)
    ticks = _cpu_ticks(proc.pid)
    time.sleep(idle_s)
    cpu = (_cpu_ticks(proc.pid) - ticks) / _clk_tck() / idle_s * 100
    rss = _rss_kib(proc.pid)
    proc.terminate()
    proc.wait(timeout=15)
    print(f"kiosk process idle, camera open: RSS {rss / 1024:.1f} MiB, CPU {cpu:.2f} % of one core over {idle_s:.0f} s")


def _uuid(i: int) -> str:
    return f"01900000-0000-7000-8000-{i:012x}"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _clk_tck() -> int:
    import os

    return os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presses", type=int, default=2000)
    parser.add_argument("--published", type=int, default=300)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--idle-s", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-kiosk-") as name:
        tmp = Path(name)
        broker = LocalBroker(tmp / "broker").start()
        try:
            bench_commit(tmp, args.presses)
            bench_publish(tmp, broker, args.published)
            bench_drain(tmp, broker, args.backlog)
            bench_memory(tmp, broker, args.idle_s)
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
