"""Fleet benchmark (figures, not pass/fail): a province's kiosks on one broker.

The production Mosquitto config (TLS only, client certificates from the fleet CA, the ACL), one or
two `collector serve --role ingest` processes, and N simulated kiosks in a few worker processes:
each kiosk is one MQTT v5 connection with its own certificate, publishes rating batches in the
contract's format and re-sends what is not acked when it reconnects. It measures

  - the time until every kiosk is connected, and the broker's memory per connection;
  - the broker restarted: the time until every kiosk is connected again, and until every batch
    published while it was down (the backlog) is acked (the kiosks re-send on reconnecting and
    when the collector's status says it is back, as real kiosks do);
  - exactly once: ratings stored against ratings sent.

    .venv/bin/python scripts/bench_fleet.py [--kiosks 2000] [--workers 4] [--collectors 1|2]
                                            [--down-s 10] [--store-url postgresql://…]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from collector.localbroker import LocalBroker, free_port  # noqa: E402
from kiosk import wire  # noqa: E402
from kiosk.ids import uuid7  # noqa: E402
from kiosk.mqtt import reconnect_delays  # noqa: E402

BIN = Path(sys.executable).parent
PER_BATCH = 5


# --- a worker process: many kiosks ----------------------------------------------------------


class SimKiosk:
    def __init__(self, kiosk_id: str, folder: Path, port: int, ca: Path, state: dict[str, int]) -> None:
        self.kiosk_id = kiosk_id
        self.topics = wire.Topics()
        self.unacked: dict[str, bytes] = {}  # batch's first rating id → payload
        self.ids_of: dict[str, list[str]] = {}
        self.seq = 0
        self.lock = threading.Lock()
        self.connected = False
        self.collector_session = ""
        self.state = state
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=kiosk_id, protocol=mqtt.MQTTv5)
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(folder / f"{kiosk_id}.crt"), str(folder / f"{kiosk_id}.key"))
        self.client.tls_set_context(context)
        self.client.reconnect_delay_set(*reconnect_delays())  # type: ignore[arg-type]  # as a kiosk
        self.client.connect_timeout = 30.0  # a TLS handshake waits its turn when thousands arrive at once
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_ack
        self.client.connect_async("127.0.0.1", port, keepalive=60)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, props) -> None:  # type: ignore[no-untyped-def]
        if reason.is_failure:
            return
        client.subscribe([(self.topics.acks(self.kiosk_id), 1), (wire.collector_status_topic(), 1)])
        self.connected = True
        self.resend()

    def resend(self) -> None:
        """Everything not yet acked again: on reconnecting, and when a collector comes online (a
        broker restart drops what reached it before the collector's shared subscription was back)."""
        with self.lock:
            waiting = list(self.unacked.values())
        for payload in waiting:
            self.client.publish(self.topics.ratings(self.kiosk_id), payload, qos=1)

    def _on_disconnect(self, client, userdata, flags, reason, props) -> None:  # type: ignore[no-untyped-def]
        self.connected = False

    def _on_ack(self, client, userdata, message) -> None:  # type: ignore[no-untyped-def]
        if message.topic == wire.collector_status_topic():
            state, session = wire.decode_collector_status(message.payload)
            if state == "online" and not message.retain and session != self.collector_session:
                self.collector_session = session
                self.resend()
            elif message.retain:
                self.collector_session = session
            return
        acked = set(wire.decode_ack(message.payload).ratings)
        with self.lock:
            for first, ids in list(self.ids_of.items()):
                if set(ids) <= acked and first in self.unacked:
                    del self.unacked[first]
                    self.state["acked"] += len(ids)

    def press_batch(self) -> None:
        now_ms = int(time.time() * 1000)
        ratings = []
        for _ in range(PER_BATCH):
            self.seq += 1
            ratings.append(
                wire.Rating(
                    id=uuid7(now_ms), install="f1ee7000", seq=self.seq, counter=f"c{self.kiosk_id[2:]}",
                    score=random.choice((4, 4, 3, 2, 1)), pressed_at=wire.format_epoch(now_ms / 1000),
                    clock="synced", snapshot=None, snapshot_error="camera_disabled", flag=None, fw="bench",
                )
            )  # fmt: skip
        payload = wire.encode_batch(self.kiosk_id, ratings)
        with self.lock:
            self.unacked[ratings[0].id] = payload
            self.ids_of[ratings[0].id] = [r.id for r in ratings]
            self.state["sent"] += len(ratings)
        if self.connected:
            self.client.publish(self.topics.ratings(self.kiosk_id), payload, qos=1)


def worker(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    state = {"sent": 0, "acked": 0}
    kiosks = []
    for i in range(args.first, args.first + args.count):
        # Kiosks are switched on over a few seconds, not in one instant (as a province's are).
        kiosks.append(SimKiosk(f"k-{i}", folder / "certs", args.port, folder / "ca.crt", state))
        time.sleep(args.spread_s / args.count)
    status = folder / f"worker-{args.first}.json"
    commands = folder / "command"
    done_rounds = 0
    while True:
        connected = sum(k.connected for k in kiosks)
        unacked = sum(len(k.unacked) for k in kiosks)
        status.write_text(json.dumps({"connected": connected, "unacked_batches": unacked, **state}))
        wanted = int(commands.read_text() or 0) if commands.exists() else 0
        if wanted < 0:
            break
        while done_rounds < wanted:  # the main process asks for a round of presses on every kiosk
            done_rounds += 1
            for kiosk in kiosks:
                kiosk.press_batch()
        time.sleep(0.2)
    for kiosk in kiosks:
        kiosk.client.loop_stop()
    return 0


# --- the main process ---------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def totals(folder: Path) -> dict[str, int]:
    out = {"connected": 0, "unacked_batches": 0, "sent": 0, "acked": 0}
    for path in folder.glob("worker-*.json"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for key in out:
            out[key] += int(doc.get(key, 0))
    return out


def wait(folder: Path, condition, timeout_s: float) -> float | None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition(totals(folder)):
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def ready(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--collectors", type=int, default=1, choices=(1, 2))
    parser.add_argument("--down-s", type=float, default=10.0, help="how long the broker stays down")
    parser.add_argument("--store-url", default="", help="the collectors' store (default: SQLite in the data folder)")
    parser.add_argument("--spread-s", type=float, default=20.0, help="the kiosks are switched on over this time")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    from collector.cli import main as collector_main
    from collector.fleet import FleetCA
    from collector.registry import Counter, KioskEntry, Registry, Unit, save_registry

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as name:
        tmp = Path(name)
        port = free_port()
        units = [Unit("P", "Province", "province")] + [
            Unit(f"P.{d}", f"District {d}", "district", "P") for d in range(20)
        ]
        registry = Registry.build(
            units,
            [Counter(f"c{i}", f"P.{i % 20}", f"Counter {i}") for i in range(args.kiosks)],
            [KioskEntry(f"k-{i}", f"c{i}") for i in range(args.kiosks)],
        )
        save_registry(registry, tmp / "registry.toml")
        configs = []
        for n in range(args.collectors):
            conf = tmp / f"collector-{n}.toml"
            fleet_dir = tmp / "data" / "fleet"
            conf.write_text(
                f'data_dir = "{tmp / "data"}"\nregistry = "{tmp / "registry.toml"}"\n'
                + (f'[store]\nurl = "{args.store_url}"\n' if args.store_url else "")
                + f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ntls_ca = "{fleet_dir / "ca.crt"}"\n'
                f'tls_cert = "{fleet_dir / "collector.crt"}"\ntls_key = "{fleet_dir / "collector.key"}"\n'
                f'[ingest]\nclient_id = "collector-bench-{n}"\n[http]\nport = {free_port()}\n'
                "[update]\nport = 0\n"  # no release server: this measures ingest
            )
            configs.append(conf)
        assert collector_main(["registry", "load", str(tmp / "registry.toml"), "--config", str(configs[0])]) == 0
        assert collector_main(["ca", "init", "--broker-host", "127.0.0.1", "--config", str(configs[0])]) == 0
        ca = FleetCA(tmp / "data" / "fleet")
        certs = tmp / "certs"
        certs.mkdir()
        t0 = time.perf_counter()
        for i in range(args.kiosks):
            key_pem, cert_pem = ca.issue_client(f"k-{i}")
            (certs / f"k-{i}.key").write_bytes(key_pem)
            (certs / f"k-{i}.crt").write_bytes(cert_pem)
        (tmp / "ca.crt").write_bytes(ca.ca_crt.read_bytes())
        print(f"certificates          {args.kiosks} kiosk certificates issued in {time.perf_counter() - t0:.1f} s")
        broker_dir = tmp / "broker"
        assert (
            collector_main(
                ["broker", "config", "--out", str(broker_dir), "--port", str(port), "--bind", "127.0.0.1"]
                + ["--persistence", f"{broker_dir}/", "--config", str(configs[0])]
            )
            == 0
        )
        broker = LocalBroker(broker_dir, port=port, config=broker_dir / "mosquitto.conf", own_listener=True).start()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for conf in configs:
                procs.append(
                    subprocess.Popen(
                        [str(BIN / "collector"), "serve", "--role", "ingest", "--config", str(conf)],
                        stdout=open(tmp / f"{conf.stem}.log", "ab"),  # noqa: SIM115 - the child keeps it
                        stderr=subprocess.STDOUT,
                    )
                )
            for conf in configs:
                http_port = int(conf.read_text().split("[http]\nport = ")[1].split()[0])
                if not ready(f"http://127.0.0.1:{http_port}/readyz", 60):
                    print(f"a collector did not become ready; see {tmp}/{conf.stem}.log", file=sys.stderr)
                    return 1
            assert broker.process is not None
            idle_mib = rss_mib(broker.process.pid)
            per_worker = -(-args.kiosks // args.workers)
            started = time.monotonic()
            for first in range(0, args.kiosks, per_worker):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, __file__, "--worker", "--first", str(first)]
                        + ["--count", str(min(per_worker, args.kiosks - first)), "--port", str(port), "--dir", str(tmp)]
                        + ["--spread-s", str(args.spread_s)]
                    )
                )
            took = wait(tmp, lambda t: t["connected"] == args.kiosks, 300)
            if took is None:
                print(f"not every kiosk connected: {totals(tmp)}", file=sys.stderr)
                return 1
            connected_mib = rss_mib(broker.process.pid)
            print(
                f"connect               {args.kiosks} kiosks (TLS, client certificates), switched on over "
                f"{args.spread_s:g} s, all connected {took:.1f} s after the first"
            )
            print(
                f"broker memory         {idle_mib:.1f} MiB idle → {connected_mib:.1f} MiB with {args.kiosks} kiosks = "
                f"{(connected_mib - idle_mib) * 1024 / args.kiosks:.1f} KiB per connection"
            )
            (tmp / "command").write_text("1")
            took = wait(tmp, lambda t: t["sent"] and t["unacked_batches"] == 0, 300)
            print(f"steady                one batch of {PER_BATCH} from every kiosk acked in {took:.1f} s")
            broker.stop()
            (tmp / "command").write_text("2")  # presses while the broker is down: the backlog
            time.sleep(args.down_s)
            broker.start()
            back = time.monotonic()
            reconnected = wait(tmp, lambda t: t["connected"] == args.kiosks, 300)
            left = 300 - (time.monotonic() - back)
            acked = wait(tmp, lambda t: t["unacked_batches"] == 0, left)
            drained = None if acked is None else time.monotonic() - back
            print(
                f"broker down {args.down_s:g} s     every kiosk connected again "
                f"{'never' if reconnected is None else f'{reconnected:.1f} s'} after the broker's return; "
                f"every backlog acked {'never' if drained is None else f'{drained:.1f} s'} after it"
            )
            final = totals(tmp)
            from collector.store import open_store

            store = open_store(args.store_url or f"sqlite:///{tmp / 'data' / 'collector.db'}")
            stored = store._row("SELECT COUNT(*), COUNT(DISTINCT id) FROM ratings") or (0, 0)
            store.close()
            print(
                f"exactly once          sent {final['sent']}, stored {stored[0]} ({stored[1]} distinct), "
                f"with {args.collectors} ingest collector(s); {time.monotonic() - started:.0f} s in all"
            )
        finally:
            (tmp / "command").write_text("-1")
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            broker.stop()
    return 0


if __name__ == "__main__":
    if os.environ.get("BENCH_FLEET_SEED"):
        random.seed(int(os.environ["BENCH_FLEET_SEED"]))
    sys.exit(main())
