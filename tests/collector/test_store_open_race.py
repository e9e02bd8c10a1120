"""Several processes opening one new SQLite store at the same moment (systemd starting the web,
ingest and jobs collectors together) all come up on one schema; none runs a migration twice."""

from __future__ import annotations

import multiprocessing
import sqlite3

from collector.store import MIGRATIONS, SqliteStore


def _open(path: str, start, results) -> None:  # type: ignore[no-untyped-def]
    start.wait()
    try:
        SqliteStore(path).close()
        results.put("ok")
    except Exception as exc:  # reported to the test, not swallowed
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    context = multiprocessing.get_context("spawn")
    for round_ in range(5):
        path = str(tmp_path / f"race-{round_}.db")
        start, results = context.Event(), context.Queue()
        processes = [context.Process(target=_open, args=(path, start, results)) for _ in range(4)]
        for process in processes:
            process.start()
        start.set()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert outcomes == ["ok"] * 4, outcomes
        version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
        assert version == len(MIGRATIONS)


def test_collector_migrate_brings_either_store_to_the_latest_version(tmp_path, pg_url, capsys):
    from collector.cli import main as collector_main
    from collector.pgstore import MIGRATIONS as PG_MIGRATIONS

    assert len(PG_MIGRATIONS) == len(MIGRATIONS)  # one version scheme on both back-ends
    for url in (f"sqlite:///{tmp_path / 'c.db'}", pg_url):
        config = tmp_path / "collector.toml"
        config.write_text(f'data_dir = "{tmp_path}"\n[store]\nurl = "{url}"\n')
        assert collector_main(["migrate", "--config", str(config)]) == 0
        assert f"schema version {len(MIGRATIONS)}" in capsys.readouterr().out
