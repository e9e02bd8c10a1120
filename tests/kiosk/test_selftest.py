"""`kiosk selftest` on fake hardware against a real broker, and its failures."""

import json
import subprocess
import sys
from pathlib import Path

from kiosk import wire
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path, port, camera=""):
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'kiosk_id = "k-vb-q1"\ncounter = "vb-q1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n[clock]\nassume_synced = true\n'
        f'[camera]\nsource = "{camera}"\n'
    )
    return path


def selftest(conf, *extra):
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "selftest", "--fake-hardware", "--config", str(conf), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_selftest_passes_and_publishes_its_report(tmp_path, broker, collector):
    result = selftest(config(tmp_path, broker.port))
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("outbox", "disk", "clock", "camera", "panel", "broker"):
        assert f"OK   {step}" in result.stdout
    assert "press button 4 (Không hài lòng)" in result.stdout
    assert "RESULT: all checks passed" in result.stdout
    report = json.loads((tmp_path / "data" / "selftest.json").read_text())
    assert report["ok"] and len(report["checks"]) == 6
    assert (tmp_path / "data" / "selftest.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert wait_for(lambda: any("selftest" in s for s in collector.statuses))
    published = next(s for s in collector.statuses if "selftest" in s)
    assert published["selftest"]["ok"] and published["kiosk"] == "k-vb-q1"
    wire.parse_time(published["selftest"]["at"])


def test_selftest_fails_with_a_hint_when_the_broker_is_unreachable(tmp_path):
    from collector.localbroker import free_port

    result = selftest(config(tmp_path, free_port()))
    assert result.returncode == 1
    assert "FAIL broker" in result.stdout and "RESULT: FAILED (broker)" in result.stdout


def test_selftest_reports_a_missing_camera(tmp_path, broker):
    result = selftest(config(tmp_path, broker.port, camera=str(tmp_path / "no-such-camera.avi")))
    assert result.returncode == 1
    assert "FAIL camera" in result.stdout and "not found" in result.stdout


def test_running_kiosk_status_carries_the_last_selftest(tmp_path, broker, collector):
    from kiosk.config import load_settings
    from tests.kiosk.conftest import KioskRig

    assert selftest(config(tmp_path, broker.port)).returncode == 0
    collector.statuses.clear()
    rig = KioskRig(load_settings(tmp_path / "kiosk.toml"))
    try:
        assert rig.pump(lambda: any(s.get("state") == "online" for s in collector.statuses))
        online = next(s for s in collector.statuses if s.get("state") == "online")
        assert online["selftest"]["ok"] is True and online["selftest"]["failed"] == []
    finally:
        rig.close()
