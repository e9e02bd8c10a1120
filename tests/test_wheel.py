"""What the commands read at run time travels in the wheel: `collector broker config` works from
an installed wheel, not only from a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_broker_config_and_unit_files_work_from_the_wheel(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "collector/shipped/mosquitto/production.conf",
        "collector/shipped/mosquitto/local.conf",
        "kiosk/shipped/systemd/kiosk.service",
        "collector/shipped/systemd/collector@.service",
    ):
        assert shipped in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    config = tmp_path / "collector.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    env = {"PATH": "/usr/bin:/bin"}
    prelude = f"import sys; sys.path.insert(0, {str(site)!r}); "

    def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
        # -I: the checkout and the editable install are not on the path; only the wheel's files are
        return subprocess.run(
            [sys.executable, "-I", "-c", prelude + code, *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )

    cli = "from collector.cli import main; sys.exit(main(sys.argv[1:]))"
    assert str(site) in python("import collector; print(collector.__file__)").stdout
    init = python(cli, "ca", "init", "--config", str(config))
    assert init.returncode == 0, init.stderr
    conf = python(cli, "broker", "config", "--out", str(tmp_path / "broker"), "--config", str(config))
    assert conf.returncode == 0, conf.stderr
    assert "require_certificate true" in (tmp_path / "broker" / "mosquitto.conf").read_text()
