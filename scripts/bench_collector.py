"""Collector benchmarks (figures, not pass/fail).

1. Ingest: 1,000 simulated kiosks publish rating batches through a real Mosquitto into the real
   collector (SQLite, or PostgreSQL with --store postgresql); ratings per second until every rating is stored and acked, then every
   batch is sent again to check exactly-once; next to the broker's own rate for the same payloads
   measured with mosquitto_pub / mosquitto_sub in the same run.
2. Reports: summary latency for one counter's month and a province's year on a store of
   10 million ratings (built through the store's own insert path, roll-ups included).

    .venv/bin/python scripts/bench_collector.py [--kiosks 1000] [--batches 4] [--per-batch 25]
                                                [--store-ratings 10000000] [--keep-store PATH]
                                                [--store sqlite|postgresql] [--postgres-url URL]

With --store postgresql the benchmark makes its own databases on the server of --postgres-url
(sat_bench_ingest, dropped and made again each run; sat_bench_reports, kept and reused, like
--keep-store for SQLite).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from collector import reports  # noqa: E402
from collector.config import settings_from_dict  # noqa: E402
from collector.ingest import Ingestor  # noqa: E402
from collector.localbroker import LocalBroker  # noqa: E402
from collector.registry import Counter, KioskEntry, Registry, Unit  # noqa: E402
from collector.store import SqliteStore, open_store  # noqa: E402
from kiosk import wire  # noqa: E402
from kiosk.ids import uuid7  # noqa: E402

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def database_url(server_url: str, name: str, *, fresh: bool) -> str:
    """A database ``name`` on the server of ``server_url``; ``fresh``: dropped and made again."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and fresh:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or fresh:
            admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def fleet_registry(kiosks: int, districts: int = 10) -> Registry:
    units = [Unit("P", "Province", "province")]
    units += [Unit(f"P.{d}", f"District {d}", "district", "P") for d in range(districts)]
    counters = [Counter(f"c{i}", f"P.{i % districts}", f"Counter {i}") for i in range(kiosks)]
    return Registry.build(units, counters, [KioskEntry(f"k-{i}", f"c{i}") for i in range(kiosks)])


def make_batches(kiosks: int, batches: int, per_batch: int) -> list[tuple[str, bytes, list[str]]]:
    out = []
    now_ms = int(time.time() * 1000)
    for b in range(batches):
        for k in range(kiosks):
            ratings = [
                wire.Rating(
                    id=uuid7(now_ms),
                    install="a1b2c3d4",
                    seq=b * per_batch + i + 1,
                    counter=f"c{k}",
                    score=1 + (k + i) % 4,
                    pressed_at=wire.format_epoch(now_ms / 1000 - 60 + i),
                    clock="synced",
                    snapshot=None,
                    snapshot_error="camera_disabled",
                    flag=None,
                    fw="0.1.0",
                )
                for i in range(per_batch)
            ]
            out.append((f"k-{k}", wire.encode_batch(f"k-{k}", ratings), [r.id for r in ratings]))
    return out


def kiosk_side(port: int, work: list[tuple[str, bytes, list[str]]], connections: int, rounds: int, pipe) -> None:  # noqa: ANN001
    """The kiosks, in a process of their own (as on the road they are other machines): publish every
    batch, wait for its ratings' acks; each round's time goes back through ``pipe``."""
    expected = {rid for _, _, ids in work for rid in ids}
    acked: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()

    def on_ack(client, userdata, message):  # noqa: ANN001
        ack = wire.decode_ack(message.payload)
        with lock:
            acked.update(ack.ratings)
            if expected <= acked:
                done.set()

    clients = []
    for p in range(connections):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{p}", protocol=mqtt.MQTTv5)
        c.on_message = on_ack
        c.max_inflight_messages_set(100)
        c.connect("127.0.0.1", port)
        if p == 0:
            c.subscribe("sat/v1/k/+/acks", qos=1)
        c.loop_start()
        clients.append(c)
    time.sleep(1.0)
    pipe.send("ready")
    for _ in range(rounds):
        pipe.recv()  # go
        with lock:
            acked.clear()
            done.clear()
        start = time.perf_counter()
        infos = [
            clients[i % connections].publish(wire.Topics().ratings(kiosk), payload, qos=1)
            for i, (kiosk, payload, _) in enumerate(work)
        ]
        for info in infos:
            info.wait_for_publish(600)
        done.wait(600)
        pipe.send((time.perf_counter() - start, len(acked & expected)))
    for c in clients:
        c.loop_stop()
        c.disconnect()


def bench_ingest(tmp: Path, kiosks: int, batches: int, per_batch: int, publishers: int, store_url: str) -> None:
    broker = LocalBroker(tmp / "broker").start()
    settings = settings_from_dict(
        {
            "data_dir": str(tmp / "collector"),
            "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "ingest": {"client_id": "collector-bench"},
        },
        base_dir=tmp,
    )
    settings.data_dir.mkdir(parents=True)
    store_url = store_url or f"sqlite:///{settings.data_dir / 'collector.db'}"
    print(f"store                 {store_url.split('@')[-1]}")
    store = open_store(store_url)
    store.replace_registry(fleet_registry(kiosks))
    ingestor = Ingestor(settings=settings, store=open_store(store_url))
    ingestor.start()
    work = make_batches(kiosks, batches, per_batch)
    expected = len({rid for _, _, ids in work for rid in ids})
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    side = multiprocessing.get_context("fork").Process(
        target=kiosk_side, args=(broker.port, work, publishers, 2, theirs), daemon=True
    )
    side.start()
    ours.recv()  # ready
    ours.send("go")
    took, acked = ours.recv()
    stored = store.rating_count()
    print(
        f"ingest                {len(work)} batches of {per_batch} from {kiosks} kiosks over {publishers} "
        f"connections (another process): {expected} ratings in {took:.1f} s = {expected / took:,.0f} ratings/s "
        f"({len(work) / took:,.0f} messages/s), stored {stored}, acked {acked}, "
        f"{ingestor.handler.counts.batches} commits taking {ingestor.batch_seconds_total:.1f} s"
    )
    before = ingestor.handler.counts.duplicates
    ours.send("go")
    took_dup, acked = ours.recv()
    print(
        f"exactly once          every batch sent twice: stored {store.rating_count()} of {expected} unique "
        f"(duplicates recognised {ingestor.handler.counts.duplicates - before}, acked {acked}, {took_dup:.1f} s), "
        f"quarantined {ingestor.handler.counts.quarantined}"
    )
    side.join(60)
    ingestor.stop()
    store.close()
    bench_broker(tmp, broker, [payload for _, payload, _ in work])
    broker.stop()


def bench_broker(tmp: Path, broker: LocalBroker, payloads: list[bytes]) -> None:
    lines = tmp / "payloads.txt"
    lines.write_bytes(b"\n".join(payloads) + b"\n")
    n = len(payloads)
    sub = subprocess.Popen(
        ["mosquitto_sub", "-p", str(broker.port), "-q", "1", "-t", "raw/bench", "-C", str(n), "-V", "mqttv5"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    start = time.perf_counter()
    with open(lines, "rb") as fh:
        subprocess.run(
            ["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "raw/bench", "-l", "-V", "mqttv5"],
            stdin=fh,
            check=True,
        )
    sub.wait(timeout=600)
    took = time.perf_counter() - start
    per_batch = len(wire.decode_batch(payloads[0]).ratings)
    print(
        f"broker alone          mosquitto_pub → mosquitto_sub, same {n} payloads at QoS 1: {took:.1f} s = "
        f"{n / took:,.0f} messages/s = {n * per_batch / took:,.0f} ratings/s"
    )


def build_store(url: str, total: int, counters: int, days: int) -> Registry:
    """A province: 9 districts, 10 communes each, counters spread over them, `days` of ratings."""
    units = [Unit("P", "Province", "province")]
    for d in range(9):
        units.append(Unit(f"P.{d}", f"District {d}", "district", "P"))
        units += [Unit(f"P.{d}.{c}", f"Commune {d}.{c}", "commune", f"P.{d}") for c in range(10)]
    leaves = [u.id for u in units if u.level != "province"]
    registry = Registry.build(
        units,
        [Counter(f"c{i}", leaves[i % len(leaves)], f"Counter {i}") for i in range(counters)],
        [KioskEntry(f"k-{i}", f"c{i}") for i in range(counters)],
    )
    store = open_store(url)
    store.replace_registry(registry)
    if store.rating_count() >= total:
        store.close()
        return registry
    rng = random.Random(1)
    unit_of = {c.id: c.unit for c in registry.counters.values()}
    end = time.time()
    start_epoch = end - days * 86400
    step = (end - start_epoch) / total
    chunk = 20_000
    t0 = time.perf_counter()
    seqs = [0] * counters
    for first in range(0, total, chunk):
        by_kiosk: dict[int, list[wire.Rating]] = {}
        for i in range(first, min(total, first + chunk)):
            k = rng.randrange(counters)
            seqs[k] += 1
            epoch = start_epoch + i * step
            by_kiosk.setdefault(k, []).append(
                wire.Rating(
                    id=uuid7(int(epoch * 1000)),
                    install="a1b2c3d4",
                    seq=seqs[k],
                    counter=f"c{k}",
                    score=rng.choices((4, 3, 2, 1), (60, 28, 8, 4))[0],
                    pressed_at=wire.format_epoch(epoch),
                    clock="synced",
                    snapshot=None,
                    snapshot_error="camera_disabled",
                    flag=None,
                    fw="0.1.0",
                )
            )
        with store.transaction():
            for k, ratings in by_kiosk.items():
                store.add_ratings(f"k-{k}", ratings, unit_of=unit_of, received_at=wire.format_epoch(end), tz=TZ)
        if first and first % 1_000_000 == 0:
            rate = first / (time.perf_counter() - t0)
            print(f"  … {first:,} ratings stored ({rate:,.0f}/s)", flush=True)
    size = (
        Path(url[len("sqlite:///") :]).stat().st_size
        if isinstance(store, SqliteStore)
        else store.conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    )
    print(
        f"store built           {total:,} ratings in {time.perf_counter() - t0:.0f} s "
        f"({total / (time.perf_counter() - t0):,.0f} ratings/s through add_ratings), {size / 2**30:.2f} GiB"
    )
    store.close()
    return registry


def bench_reports(url: str, total: int) -> None:
    registry = build_store(url, total, counters=300, days=730)
    store = open_store(url)
    today = time.localtime()
    last = date(today.tm_year, today.tm_mon, today.tm_mday)
    month = (last.replace(day=1), last)  # this month so far
    year = (last - timedelta(days=364), last)  # the last 365 days: edge days come from daily roll-ups
    calendar_year = (date(last.year - 1, 1, 1), date(last.year - 1, 12, 31))  # whole months only

    def timed(fn, runs: int) -> tuple[float, float, reports.Summary]:  # noqa: ANN001
        took, result = [], None
        for _ in range(runs):
            t = time.perf_counter()
            result = fn()
            took.append(time.perf_counter() - t)
        return statistics.median(took), max(took), result

    m50, mmax, counter_month = timed(lambda: reports.summarise_counter(store, registry, "c7", *month), 30)
    y50, ymax, province_year = timed(lambda: reports.summarise_unit(store, registry, "P", *year), 10)
    d50, dmax, district_year = timed(lambda: reports.summarise_unit(store, registry, "P.3", *year), 10)
    c50, cmax, calendar = timed(lambda: reports.summarise_unit(store, registry, "P", *calendar_year), 10)
    print(f"reports on {store.rating_count():,} ratings:")
    print(f"  one counter, a month  p50 {m50 * 1e3:.1f} ms, max {mmax * 1e3:.1f} ms ({counter_month.total} ratings)")
    print(
        f"  province, a year      p50 {y50 * 1e3:.1f} ms, max {ymax * 1e3:.1f} ms "
        f"({province_year.total:,} ratings, {len(province_year.children)} children, monthly series)"
    )
    print(f"  district, a year      p50 {d50 * 1e3:.1f} ms, max {dmax * 1e3:.1f} ms ({district_year.total:,} ratings)")
    print(
        f"  province, {calendar_year[0].year}       p50 {c50 * 1e3:.1f} ms, max {cmax * 1e3:.1f} ms "
        f"({calendar.total:,} ratings; a calendar year reads only monthly roll-ups)"
    )
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=4, help="batches per kiosk")
    parser.add_argument("--per-batch", type=int, default=25, help="ratings per batch")
    parser.add_argument("--publishers", type=int, default=8, help="MQTT connections the kiosks share")
    parser.add_argument("--store-ratings", type=int, default=10_000_000)
    parser.add_argument("--keep-store", help="build (or reuse) the report store at this path")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-reports", action="store_true")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    pg = args.store == "postgresql"
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as name:
        tmp = Path(name)
        if not args.skip_ingest:
            url = database_url(args.postgres_url, "sat_bench_ingest", fresh=True) if pg else ""
            bench_ingest(tmp, args.kiosks, args.batches, args.per_batch, args.publishers, url)
        if not args.skip_reports:
            if pg:
                url = database_url(args.postgres_url, "sat_bench_reports", fresh=False)
            else:
                url = f"sqlite:///{Path(args.keep_store) if args.keep_store else tmp / 'reports.db'}"
            bench_reports(url, args.store_ratings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
