from pathlib import Path

import pytest

from kiosk.config import load_settings, settings_from_dict
from kiosk.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "kiosk.example.toml"


def test_example_config_loads_with_every_key():
    settings = load_settings(EXAMPLE)
    assert settings.kiosk_id == "k-vb-q1" and settings.counter == "vb-q1"
    assert settings.mqtt.port == 8883 and settings.mqtt.tls_ca == str(EXAMPLE.parent / "ca.crt")
    assert settings.panel.pins == (17, 27, 22, 23) and settings.panel.scores == (4, 3, 2, 1)
    assert settings.camera.source == "/dev/video0"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"counter": "c", "data_dir": "d"}, "kiosk_id is required"),
        ({"kiosk_id": "K BAD", "counter": "c", "data_dir": "d"}, "kiosk_id"),
        ({"kiosk_id": "k-a", "counter": "c", "data_dir": "d", "panel": {"lockout": 5}}, "unknown key"),
        ({"kiosk_id": "k-a", "counter": "c", "data_dir": "d", "panel": {"scores": [4, 4, 2, 1]}}, "scores"),
        ({"kiosk_id": "k-a", "counter": "c", "data_dir": "d", "panel": {"kind": "serial"}}, "serial_port"),
        ({"kiosk_id": "k-a", "counter": "c", "data_dir": "d", "panel": {"pins": [1, 2]}}, "pins"),
        ({"kiosk_id": "k-a", "counter": "c", "data_dir": "d", "mqtt": "x"}, "must be a table"),
    ],
)
def test_bad_config_is_a_clear_error(doc, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        settings_from_dict(doc, base_dir=tmp_path)


def test_fake_hardware_runs_without_a_config():
    assert load_settings(None, fake_hardware=True).kiosk_id == "k-demo-q1"
    with pytest.raises(ConfigError):
        load_settings(None)


def test_kiosk_status_prints_backlog_and_state(tmp_path):
    import subprocess
    import sys

    from kiosk.outbox import SqliteOutbox

    conf = tmp_path / "kiosk.toml"
    conf.write_text(f'kiosk_id = "k-a1"\ncounter = "vb-q1"\ndata_dir = "{tmp_path / "d"}"\n')

    def status():
        return subprocess.run(
            [sys.executable, "-m", "kiosk.cli", "status", "--config", str(conf)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )

    assert "has not run" in status().stdout
    outbox = SqliteOutbox(tmp_path / "d" / "outbox.db")
    outbox.record_press(
        counter="vb-q1",
        score=4,
        flag=None,
        pressed_epoch=1.79e9,
        clock="synced",
        boot_id="b",
        since_boot_s=1.0,
        fw="0.1.0",
        snapshot_state="none",
    )
    out = status().stdout
    assert "1 rating(s), 0 snapshot(s) not yet acked" in out
    assert outbox.install_id in out
