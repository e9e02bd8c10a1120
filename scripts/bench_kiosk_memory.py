"""Kiosk memory, part by part (figures, not pass/fail): the resident size of one process while it
drives a single part of the kiosk many times, to find which part grows when a whole kiosk does
(`scripts/soak` measures the whole kiosk; its kiosks grew 2-3 MiB an hour).

- outbox: the SQLite outbox as a kiosk uses it (record a press, ack every 25, prune every 1,000);
- camera: the generated camera drawing and encoding a picture;
- mqtt: paho-mqtt publishing QoS 1 batches to a Mosquitto this script starts on a free port.

    .venv/bin/python scripts/bench_kiosk_memory.py [--parts outbox,camera,mqtt] [--n 30000]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(part: str, samples: list[tuple[int, float]]) -> None:
    first, last = samples[0], samples[-1]
    per = (last[1] - first[1]) * 1024 / max(1, last[0] - first[0])
    trail = " ".join(f"{n}:{mib:.1f}" for n, mib in samples)
    print(f"{part:7} RSS MiB after n: {trail}  → {per:+.3f} KiB per operation after the first sample")


def outbox(n: int) -> None:
    from kiosk.outbox import SqliteOutbox

    box = SqliteOutbox(Path(tempfile.mkdtemp()) / "outbox.db")
    start = time.time()
    samples = []
    for i in range(1, n + 1):
        box.record_press(
            counter="vb-q1", score=1 + i % 4, flag=None, pressed_epoch=start + i, clock="synced", boot_id="b",
            since_boot_s=float(i), fw="0.1.0", snapshot_state="none", snapshot_error="camera_disabled",
        )  # fmt: skip
        if i % 25 == 0:
            box.mark_acked([r.id for r in box.unacked(after_seq=0, limit=25)], start + i)
        if i % 1000 == 0:
            box.prune(older_than_epoch=start + i - 500)
        if i % (n // 6) == 0:
            samples.append((i, rss_mib()))
    box.close()
    report("outbox", samples)


def camera(n: int) -> None:
    from kiosk.camera import GeneratedCamera

    cam = GeneratedCamera(tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    samples = []
    for i in range(1, n + 1):
        cam.capture()
        if i % (n // 6) == 0:
            samples.append((i, rss_mib()))
    report("camera", samples)


def mqtt(n: int) -> None:
    import paho.mqtt.client as paho

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = Path(tempfile.mkdtemp()) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-memory", clean_session=False)
        client.connect("127.0.0.1", port)
        client.loop_start()
        payload = b"x" * 900  # about a batch of a few ratings
        samples = []
        for i in range(1, n + 1):
            sent = client.publish("sat/v1/bench/ratings", payload, qos=1)
            if i % 200 == 0:
                sent.wait_for_publish(5)
            if i % (n // 6) == 0:
                samples.append((i, rss_mib()))
        client.loop_stop()
        client.disconnect()
        report("mqtt", samples)
    finally:
        broker.terminate()
        broker.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="outbox,camera,mqtt")
    parser.add_argument("--n", type=int, default=30_000, help="operations per part (the camera does a fifth)")
    args = parser.parse_args()
    for part in args.parts.split(","):
        if part == "outbox":
            outbox(args.n)
        elif part == "camera":
            camera(max(600, args.n // 5))
        elif part == "mqtt":
            mqtt(args.n)
        else:
            parser.error(f"no part {part!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
