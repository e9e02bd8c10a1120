"""An update end to end with real parts: real wheels of this project (a good 0.1.1 and a 0.1.2 that
crashes at start), `collector release add` and `rollout`, the release server over TLS, a kiosk
process started by the launcher as systemd would, a real `pip install` beside the running
version, the switch, the proof by an acked status — and the switch back from the broken release.
Presses go on through all of it and every one reaches the collector."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.ingest import Ingestor
from collector.localbroker import free_port
from collector.releaseserver import ReleaseServer
from collector.store import SqliteStore
from kiosk import launcher
from kiosk.outbox import SqliteOutbox
from tests.collector.conftest import collector_tls_settings

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "kiosk" / "launcher.py"
BASE = Path(sys.executable).parent.parent  # this test run's venv plays the first-boot install


def build_wheelhouse(tmp: Path, version: str, *, broken: bool = False) -> Path:
    src = tmp / f"src-{version}"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "docs", "__pycache__"))
    init = src / "kiosk" / "__init__.py"
    text = init.read_text()
    head, _, rest = text.partition("__version__ = ")
    init.write_text(head + f'__version__ = "{version}"\n' + rest.split("\n", 1)[1])
    if broken:  # a release whose kiosk dies the moment it starts
        cli = src / "kiosk" / "cli.py"
        cli.write_text(cli.read_text() + '\nraise SystemExit("this release is broken on purpose")\n')
    wheels = tmp / f"wheels-{version}"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), f"{src}[kiosk]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"pip wheel failed: {result.stderr[-2000:]}")
    return wheels


class Supervisor:
    """What systemd does with kiosk.service: start the launcher, and start it again when it exits."""

    def __init__(self, data: Path, config: Path, log: Path) -> None:
        self.data, self.config, self.log = data, config, log
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def ensure_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as under systemd
        env |= {"KIOSK_DATA": str(self.data), "KIOSK_BASE": str(BASE)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(LAUNCHER),
                    "run",
                    "--fake-hardware",
                    "--config",
                    str(self.config),
                    "--auto-press",
                    "30",
                    "--seed",
                    "7",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd="/",
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def test_a_real_update_is_installed_proved_and_a_broken_one_rolled_back(fleet, tmp_path):
    good = build_wheelhouse(tmp_path, "0.1.1")
    bad = build_wheelhouse(tmp_path, "0.1.2", broken=True)
    fleet["cli"]("release", "add", str(good))
    fleet["cli"]("release", "add", str(bad))
    settings = collector_tls_settings(fleet)
    server = ReleaseServer(settings, SqliteStore(settings.data_dir / "collector.db").load_registry, port=free_port())
    server.start()
    settings = replace(settings, update=replace(settings.update, public_url=f"https://127.0.0.1:{server.port}"))
    store = SqliteStore(settings.data_dir / "collector.db")
    ingestor = Ingestor(settings=settings, store=SqliteStore(settings.data_dir / "collector.db"))
    ingestor.start()
    bundle = fleet["tmp"] / "k-vb-q1"
    data = tmp_path / "kiosk-data"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'kiosk_id = "k-vb-q1"\ncounter = "vb-q1"\ndata_dir = "{data}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {fleet["port"]}\n'
        f'tls_ca = "{bundle / "ca.crt"}"\ntls_cert = "{bundle / "kiosk.crt"}"\ntls_key = "{bundle / "kiosk.key"}"\n'
        "[clock]\nassume_synced = true\n[outbox]\nstatus_interval_s = 10\n"
        "[panel]\nlockout_s = 0\nmax_per_minute = 1000\n"
    )
    kiosk = Supervisor(data, config, tmp_path / "kiosk.log")

    def status() -> dict:
        return store.kiosk_statuses().get("k-vb-q1") or {}

    def run_until(condition, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            kiosk.ensure_running()
            if condition():
                return True
            time.sleep(0.5)
        return False

    started = time.monotonic()
    try:
        assert run_until(lambda: status().get("fw") == "0.1.0", 60), kiosk.log.read_text()[-3000:]
        fleet["cli"]("release", "rollout", "0.1.1", "--units", "10", "--percent", "100")
        assert run_until(
            lambda: status().get("fw") == "0.1.1" and (status().get("update") or {}).get("state") == "updated", 240
        ), (
            status(),
            kiosk.log.read_text()[-3000:],
        )
        took_good = time.monotonic() - started
        assert launcher.read_state(data).get("good") == "0.1.1"
        assert os.readlink(data / "versions" / "current") == "0.1.1"
        starts_before = kiosk.starts
        # The broken one: installed, switched to, crashes at every start, switched back from.
        fleet["cli"]("release", "rollout", "0.1.2", "--units", "10", "--percent", "100")
        assert run_until(
            lambda: (status().get("update") or {}).get("state") == "rolled_back" and status().get("state") == "online",
            300,
        ), (
            status(),
            kiosk.log.read_text()[-3000:],
        )
        assert status()["fw"] == "0.1.1" and status()["update"]["version"] == "0.1.2"
        assert "crash loop" in status()["update"]["error"]
        assert os.readlink(data / "versions" / "current") == "0.1.1"
        assert kiosk.starts - starts_before >= 1 + launcher.MAX_ATTEMPTS  # the switch, then the crashes
        # Presses went on all along; every one the kiosk recorded is at the collector.
        outbox = SqliteOutbox(data / "outbox.db")
        assert run_until(lambda: outbox.backlog().ratings == 0, 60)
        recorded = outbox.db.conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
        outbox.close()
        assert recorded > 0 and store.rating_count() == recorded
        print(json.dumps({"update_good_s": round(took_good, 1), "presses": recorded, "starts": kiosk.starts}))
    finally:
        kiosk.stop()
        ingestor.stop()
        server.stop()
        store.close()
