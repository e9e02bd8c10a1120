#!/usr/bin/env python3
"""How long a kiosk takes to fetch a release over a slow, breaking link.

Makes a fleet CA and a release of ``--mb`` megabytes (random bytes in wheel-named files, so
nothing compresses), serves it with the collector's release server (HTTPS, kiosk certificate),
and downloads it with the kiosk's own code (kiosk/update.py) through a local proxy that limits
the rate to ``--kbps`` kilobytes a second and cuts the connection every ``--break-s`` seconds —
a 3G link in a commune. Prints the time, the number of resumes, and the effective rate.

    .venv/bin/python scripts/bench_update.py --mb 40 --kbps 200 --break-s 30
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.config import settings_from_dict  # noqa: E402
from collector.fleet import FleetCA, write_bundle  # noqa: E402
from collector.localbroker import free_port  # noqa: E402
from collector.registry import Counter, KioskEntry, Registry, Unit  # noqa: E402
from collector.releases import ReleaseBook  # noqa: E402
from collector.releaseserver import ReleaseServer  # noqa: E402
from collector.store import SqliteStore  # noqa: E402
from kiosk.update import Offer, download  # noqa: E402


class ThrottlingProxy:
    """TCP proxy: at most ``rate`` bytes/s towards the client, every connection cut after ``life_s``."""

    def __init__(self, target_port: int, rate: int, life_s: float) -> None:
        self.target_port, self.rate, self.life_s = target_port, rate, life_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            born = time.monotonic()
            threading.Thread(target=self._pipe, args=(client, upstream, None, born), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.rate, born), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, rate: int | None, born: float) -> None:
        sent = 0
        try:
            while True:
                if time.monotonic() - born > self.life_s:
                    break  # the link drops
                data = src.recv(16 * 1024)
                if not data:
                    break
                dst.sendall(data)
                sent += len(data)
                if rate:
                    ahead = sent / rate - (time.monotonic() - born)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=20.0, help="release size in MB (a kiosk wheelhouse is ~60)")
    parser.add_argument("--kbps", type=float, default=200.0, help="link rate in kilobytes a second")
    parser.add_argument("--break-s", type=float, default=30.0, help="the link drops after this many seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = tmp / "data"
        ca = FleetCA(data / "fleet")
        ca.init(broker_hosts=("127.0.0.1", "localhost"))
        write_bundle(
            ca,
            tmp / "kiosk",
            kiosk_id="k-bench",
            counter="c1",
            broker_host="127.0.0.1",
            broker_port=8883,
            prefix="sat/v1",
        )
        dist = tmp / "dist"
        dist.mkdir()
        size = int(args.mb * 1e6)
        for name, share in (("satisfaction_kiosk-9.9.9-py3-none-any.whl", 0.1), ("big-1.0-py3-none-any.whl", 0.9)):
            with zipfile.ZipFile(dist / name, "w", compression=zipfile.ZIP_STORED) as whl:
                whl.writestr("data.bin", os.urandom(int(size * share)))
        settings = settings_from_dict({"data_dir": str(data)}, base_dir=tmp)
        store = SqliteStore(data / "collector.db")
        store.replace_registry(
            Registry.build([Unit("u", "U", "province")], [Counter("c1", "u", "Q1")], [KioskEntry("k-bench", "c1")])
        )
        book = ReleaseBook(store, data)
        made = book.add(dist, by="bench", at="2026-11-22T00:00:00.000Z")
        book.rollout(made.version, ["u"], 100, store.load_registry(), by="bench", at="2026-11-22T00:00:00.000Z")
        server = ReleaseServer(settings, store.load_registry, port=free_port(), refresh_s=0.1)
        server.start()
        time.sleep(0.3)
        proxy = ThrottlingProxy(server.port, int(args.kbps * 1000), args.break_s)
        doc, _ = book.offers(store.load_registry(), f"https://127.0.0.1:{proxy.port}")("k-bench")
        offer = Offer.parse(doc)
        offer.check(tmp / "kiosk" / "ca.crt")
        context = ssl.create_default_context(cafile=str(tmp / "kiosk" / "ca.crt"))
        context.load_cert_chain(str(tmp / "kiosk" / "kiosk.crt"), str(tmp / "kiosk" / "kiosk.key"))
        started = time.monotonic()
        download(offer, tmp / "got.tar", context, timeout_s=20, attempts=10_000, pause_s=1.0)
        took = time.monotonic() - started
        server.stop()
        store.close()
        print(
            f"release {offer.size / 1e6:.1f} MB over {args.kbps:g} kB/s, link cut every {args.break_s:g} s: "
            f"{took:.1f} s, {proxy.connections} connection(s) ({proxy.connections - 1} resumes), "
            f"effective {offer.size / took / 1000:.0f} kB/s, sha256 checked"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
