"""A short soak in the test command: real processes under a broker restart, an outage, a collector
SIGKILL and a kiosk SIGKILL. Asserts only the invariants — every press exactly once, every picture
delivered, every fault recovered from — never timings (those are the long runs' figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_soak_with_faults_loses_and_doubles_nothing(tmp_path):
    out = tmp_path / "soak"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "soak.py"), "--kiosks", "3", "--rate", "60", "--duration", "60"]
        + ["--faults", "10:broker-restart,20:broker-stop=5,35:collector-kill,45:kiosk-kill=1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "soak.json").read_text())
    verdict = summary["verdict"]
    assert verdict["presses"] > 50
    assert (verdict["missing"], len(verdict["extra"]), verdict["doubled"], verdict["undelivered"]) == (0, 0, 0, 0)
    assert verdict["pictures_missing"] == 0
    assert all(f["recovered_s"] is not None for f in summary["faults"])
    assert (out / "soak.png").stat().st_size > 10_000
