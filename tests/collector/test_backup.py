"""`collector backup` and `collector restore`, end to end through the CLI, on both stores:
restored on an empty machine, the API answers the same summaries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.backup import BackupError, Summary, restore
from collector.cli import main as collector_main
from collector.config import settings_from_dict
from collector.fleet import FleetCA
from collector.ingest import Acks, MessageHandler
from collector.pgstore import PostgresStore
from collector.registry import load_registry
from collector.store import SqliteStore
from kiosk import wire
from tests.collector.conftest import ENROLLED_AT, PASSWORD, REGISTRY
from tests.ratings import make_rating


def config_file(folder: Path, store_url: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "collector.toml"
    store = f'[store]\nurl = "{store_url}"\n' if store_url else ""
    path.write_text(f'data_dir = "{folder / "data"}"\nregistry = "{folder / "registry.toml"}"\n{store}')
    (folder / "registry.toml").write_text(REGISTRY.read_text())
    return path


def fill(store, settings) -> list[wire.Rating]:
    """Ratings through the real handler, one with its picture, a quarantined message, a user."""
    from collector.accounts import Accounts

    store.replace_registry(load_registry(REGISTRY), at=ENROLLED_AT)
    handler = MessageHandler(store=store, settings=settings, registry=store.load_registry)
    picture = b"\xff\xd8 a picture \xff\xd9"
    ratings = [make_rating(seq=i + 1, score=1 + i % 4, pressed_at=f"2026-11-{10 + i}T03:00:00.000Z") for i in range(8)]
    ratings[0] = make_rating(
        seq=1,
        snapshot=wire.SnapshotRef(hashlib.sha256(picture).hexdigest(), len(picture)),
        snapshot_error=None,
        pressed_at="2026-11-10T03:00:00.000Z",
    )
    with store.transaction():
        handler.handle(
            "sat/v1/k/k-vb-q1/ratings", wire.encode_batch("k-vb-q1", ratings), "2026-11-20T00:00:00.000Z", Acks()
        )
        handler.handle(f"sat/v1/k/k-vb-q1/snapshots/{ratings[0].id}", picture, "2026-11-20T00:00:00.000Z", Acks())
        handler.handle("sat/v1/k/k-vb-q1/ratings", b"not json", "2026-11-20T00:00:00.000Z", Acks())
    if isinstance(store, SqliteStore):
        Accounts(store).add_user("admin", PASSWORD, role="admin", unit="10", registry=store.load_registry())
    return ratings


def test_sqlite_backup_restores_on_an_empty_machine_with_the_same_summaries(tmp_path):
    config = config_file(tmp_path / "old")
    settings = settings_from_dict(
        {"data_dir": str(tmp_path / "old" / "data"), "registry": str(tmp_path / "old" / "registry.toml")},
        base_dir=tmp_path,
    )
    settings.data_dir.mkdir(parents=True)
    FleetCA(settings.data_dir / "fleet").init()
    store = SqliteStore(settings.data_dir / "collector.db")
    fill(store, settings)
    store.close()
    assert collector_main(["backup", "--out", str(tmp_path / "bk"), "--config", str(config)]) == 0
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["store"]["summary"]["ratings"] == 8
    assert len(manifest["snapshots"]) == 1 and {"ca.crt", "ca.key"} <= {f["path"] for f in manifest["fleet"]}
    assert (tmp_path / "bk").stat().st_mode & 0o077 == 0  # the CA key is in it

    new_config = config_file(tmp_path / "new")
    (tmp_path / "new" / "registry.toml").unlink()
    assert collector_main(["restore", str(tmp_path / "bk"), "--config", str(new_config)]) == 0
    new = replace(settings, data_dir=tmp_path / "new" / "data", registry=tmp_path / "new" / "registry.toml")
    assert new.registry.read_text() == REGISTRY.read_text()
    assert (new.data_dir / "fleet" / "ca.key").read_bytes() == (settings.data_dir / "fleet" / "ca.key").read_bytes()

    def answers(s) -> list[dict]:
        from collector.web import create_app

        db = SqliteStore(s.data_dir / "collector.db")
        client = TestClient(create_app(s, db))
        client.auth = ("admin", PASSWORD)
        out = [
            client.get(f"/api/v1/{path}?from=2026-11-01&to=2026-11-30").json()
            for path in ("units/10/summary", "counters/vb-q1/summary")
        ]
        picture = db.snapshot_path(db.conn.execute("SELECT rating_id FROM snapshots").fetchone()[0])
        db.close()
        return [*out, Path(picture).read_bytes()]

    before, after = answers(settings), answers(new)
    assert after == before
    assert before[0]["total"] == 8
    restored = SqliteStore(new.data_dir / "collector.db")
    (path,) = restored.conn.execute("SELECT path FROM snapshots").fetchone()
    restored.close()
    assert path.startswith(str(new.snapshot_dir))  # pictures found in the new data folder


def test_postgresql_backup_restores_into_an_empty_database_with_the_same_counts(tmp_path, postgres):
    source_url, target_url = postgres.fresh_database(), postgres.fresh_database()
    config = config_file(tmp_path / "old", source_url)
    settings = settings_from_dict(
        {"data_dir": str(tmp_path / "old" / "data"), "store": {"url": source_url}}, base_dir=tmp_path
    )
    settings.data_dir.mkdir(parents=True)
    store = PostgresStore(source_url)
    fill(store, settings)
    counts = sorted(store.counts(["vb-q1"], *_november(), by="day"), key=repr)
    store.close()
    assert collector_main(["backup", "--out", str(tmp_path / "bk"), "--config", str(config)]) == 0
    new_config = config_file(tmp_path / "new", target_url)
    assert collector_main(["restore", str(tmp_path / "bk"), "--config", str(new_config)]) == 0
    restored = PostgresStore(target_url)
    assert sorted(restored.counts(["vb-q1"], *_november(), by="day"), key=repr) == counts
    assert restored.rating_count() == 8 and len(restored.quarantined()) == 1
    restored.close()
    # a second restore into the now full database is refused
    assert collector_main(["restore", str(tmp_path / "bk"), "--config", str(new_config)]) == 2


def test_a_damaged_backup_is_refused_before_anything_is_written(tmp_path):
    config = config_file(tmp_path / "old")
    settings = settings_from_dict({"data_dir": str(tmp_path / "old" / "data")}, base_dir=tmp_path)
    settings.data_dir.mkdir(parents=True)
    store = SqliteStore(settings.data_dir / "collector.db")
    fill(store, settings)
    store.close()
    assert collector_main(["backup", "--out", str(tmp_path / "bk"), "--config", str(config)]) == 0
    with open(tmp_path / "bk" / "store.db", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02")
    target = settings_from_dict({"data_dir": str(tmp_path / "new" / "data")}, base_dir=tmp_path)
    with pytest.raises(BackupError, match="damaged"):
        restore(target, tmp_path / "bk")
    assert not (tmp_path / "new" / "data" / "collector.db").exists()


def _november():
    from datetime import date

    return date(2026, 11, 1), date(2026, 11, 30)


def test_summary_reads_what_a_store_holds(tmp_path):
    store = SqliteStore(tmp_path / "c.db")
    assert Summary.of(store.conn) == Summary(0, 0, 0, 0, 0, 0)
    store.close()
