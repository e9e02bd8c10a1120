"""Export benchmarks (figures, not pass/fail): what an inspector waits for on the demo's year.

The demo's data folder (a year of history, ~76,000 ratings, its roster of ~9,000 duties) is made
with ``scripts/demo.py --duration-s 1`` unless one is given; with --postgres-url it is also copied
into a fresh PostgreSQL database (sat_bench_exports) with ``collector store copy``. Every figure is
a whole HTTP request through the collector's web app (in-process), as an admin of the province:

- the raw ratings of the province for the last 365 days, CSV (streamed) and XLSX;
- the three-level form of the province for the year, XLSX and PDF;
- the province's page and its unit table as CSV.

    .venv/bin/python scripts/bench_exports.py [--data-dir DIR] [--postgres-url URL] [--runs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_collector import database_url  # noqa: E402

from collector.accounts import Accounts  # noqa: E402
from collector.config import load_settings  # noqa: E402
from collector.store import open_store  # noqa: E402
from collector.web import create_app  # noqa: E402

PASSWORD = "bench exports password"


def demo_folder(data_dir: Path) -> None:
    if (data_dir / "history.done").exists():
        return
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--data-dir", str(data_dir), "--duration-s", "1",
         "--http-port", "0"],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def bench(label: str, config: Path, store_url: str, runs: int) -> None:
    from fastapi.testclient import TestClient

    settings = load_settings(config)
    settings = dataclasses.replace(settings, store_url=store_url)
    store = open_store(store_url)
    registry = store.load_registry()
    root = registry.roots()[0].id
    accounts = Accounts(store)
    if "bench" not in {u.username for u in accounts.users()}:
        accounts.add_user("bench", PASSWORD, role="admin", unit=root, registry=registry)
    client = TestClient(create_app(settings, store))
    client.post("/login", data={"username": "bench", "password": PASSWORD})  # a session, as a browser has
    today = date.today()
    year = f"from={today - timedelta(days=364)}&to={today}"
    print(f"{label}: {store.rating_count():,} ratings")
    for name, path in (
        ("raw ratings, province, 365 days, CSV", f"/units/{root}/ratings.csv?{year}"),
        ("raw ratings, province, 365 days, XLSX", f"/units/{root}/ratings.xlsx?{year}"),
        ("three-level form, province, year, XLSX", f"/units/{root}/three-level.xlsx?{year}"),
        ("three-level form, province, year, PDF", f"/units/{root}/three-level.pdf?{year}"),
        ("province page, 365 days", f"/units/{root}?{year}"),
        ("province unit table, CSV", f"/units/{root}/table.csv?{year}"),
    ):
        took, size = [], 0
        for _ in range(runs):
            started = time.perf_counter()
            answer = client.get(path)
            took.append(time.perf_counter() - started)
            if answer.status_code != 200:
                print(f"  {name:42} HTTP {answer.status_code}: {answer.text[:120]}")
                break
            size = len(answer.content)
        else:
            print(
                f"  {name:42} median {statistics.median(took):6.2f} s, max {max(took):6.2f} s ({size / 1024:,.0f} KiB)"
            )
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="a demo data folder (made if missing)")
    parser.add_argument("--postgres-url", help="also copy it into a fresh PostgreSQL database on this server")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-exports-")) / "demo"
    demo_folder(data_dir)
    config = data_dir / "collector.toml"
    sqlite_url = load_settings(config).resolved_store_url
    bench("SQLite", config, sqlite_url, args.runs)
    if args.postgres_url:
        url = database_url(args.postgres_url, "sat_bench_exports", fresh=True)
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "collector"), "store", "copy", "--from", sqlite_url, "--to", url],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        bench("PostgreSQL", config, url, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
