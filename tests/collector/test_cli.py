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


def test_a_loaded_registry_lasts_past_the_next_serve(tmp_path):
    from collector.cli import prepare_store
    from collector.config import load_settings

    configured = tmp_path / "registry.toml"
    configured.write_text(REGISTRY.read_text().split("[[kiosk]]")[0])  # the old file: no kiosks
    conf = tmp_path / "collector.toml"
    conf.write_text(f'data_dir = "{tmp_path / "data"}"\nregistry = "{configured}"\n')
    result = collector("registry", "load", str(REGISTRY), "--config", str(conf), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"written to {configured}" in result.stdout
    store = prepare_store(load_settings(conf))  # what `serve` does at start
    assert len(store.load_registry().kiosks) == 12
    store.close()


def test_admin_commands_on_a_fresh_collector_read_the_configured_registry(tmp_path):
    configured = tmp_path / "registry.toml"
    configured.write_text(REGISTRY.read_text())
    conf = tmp_path / "collector.toml"
    conf.write_text(f'data_dir = "{tmp_path / "data"}"\nregistry = "{configured}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "user", "add", "boss", "--role", "admin", "--unit", "10"]
        + ["--password-stdin", "--config", str(conf)],
        input="a long enough password\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "user boss added" in result.stdout
    result = collector(
        "roster", "add-officer", "o-1", "--name", "Chị Lan", "--unit", "10.085", "--config", str(conf), cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_a_registry_table_of_the_wrong_shape_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("unit = 5\n")
    result = collector("registry", "load", str(broken), "--config", str(config(tmp_path)), cwd=ROOT)
    assert result.returncode == 2
    assert "unit must be an array of tables" in result.stderr
    assert "Traceback" not in result.stderr
