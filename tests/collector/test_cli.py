"""`collector registry load` and `collector quarantine list|replay` as an operator runs them."""

import subprocess
import sys
from pathlib import Path

from collector.store import SqliteStore
from kiosk import wire
from tests.collector.conftest import REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def collector(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def config(tmp_path):
    path = tmp_path / "collector.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def test_registry_load_checks_and_installs_the_registry(tmp_path):
    conf = config(tmp_path)
    result = collector("registry", "load", str(REGISTRY), "--config", str(conf), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "9 units, 12 counters, 12 kiosks" in result.stdout
    store = SqliteStore(tmp_path / "data" / "collector.db")
    assert store.load_registry().unit("10.085").name == "Huyện Văn Bàn"
    broken = tmp_path / "broken.toml"
    broken.write_text('[[unit]]\nid = "a"\nname = "A"\nparent = "nowhere"\n')
    result = collector("registry", "load", str(broken), "--config", str(conf), cwd=ROOT)
    assert result.returncode == 2
    assert "parent 'nowhere' is not a unit" in result.stderr
    assert store.load_registry().unit("10.085")  # the good registry is still in place


def test_quarantine_list_and_replay(tmp_path):
    conf = config(tmp_path)
    collector("registry", "load", str(REGISTRY), "--config", str(conf), cwd=ROOT)
    store = SqliteStore(tmp_path / "data" / "collector.db")
    with store.transaction():
        store.add_quarantine(
            "sat/v1/k/k-vb-q1/ratings",
            b"{oops",
            "not_json",
            "payload is not JSON",
            "2026-11-22T00:00:00.000Z",
        )
    listing = collector("quarantine", "list", "--config", str(conf), cwd=ROOT)
    assert "not_json" in listing.stdout and "1 message(s) in quarantine" in listing.stdout
    replay = collector("quarantine", "replay", "--config", str(conf), cwd=ROOT)
    assert "still not_json" in replay.stdout
    assert "0 stored, 1 still in quarantine" in replay.stdout


def test_bad_config_is_a_clear_error(tmp_path):
    conf = tmp_path / "collector.toml"
    conf.write_text('data_dir = "x"\ntimezone = "Mars/Olympus"\n')
    result = collector("quarantine", "list", "--config", str(conf), cwd=ROOT)
    assert result.returncode == 2 and "Mars/Olympus" in result.stderr


def test_old_snapshots_are_purged(tmp_path):
    store = SqliteStore(tmp_path / "c.db")
    picture = tmp_path / "p.jpg"
    picture.write_bytes(b"x")
    with store.transaction():
        store.add_snapshot(
            "01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6a", "a" * 64, str(picture), 1, "2026-01-01T00:00:00.000Z"
        )
        store.add_snapshot(
            "01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6b", "b" * 64, "new.jpg", 1, wire.format_epoch(2_000_000_000)
        )
    assert store.purge_snapshots("2026-06-01T00:00:00.000Z") == [str(picture)]
    assert store.snapshot_path("01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6b") == "new.jpg"
