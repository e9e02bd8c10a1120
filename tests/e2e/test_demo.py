"""The README's main command, run for real for a short while."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from collector.localbroker import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_starts_everything_collects_ratings_and_stops_cleanly(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--data-dir",
            str(tmp_path / "demo"),
            "--http-port",
            str(free_port()),
            "--duration-s",
            "32",
            "--presses-per-minute",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/v1/units/10/summary" in result.stdout
    counts = [int(n) for n in re.findall(r"last 30 days: (\d+) ratings", result.stdout)]
    assert counts and counts[-1] > 0, result.stdout
    assert "kiosks online 12/12" in result.stdout
    assert "stopped; data kept in" in result.stdout
    assert "warning:" not in result.stderr
