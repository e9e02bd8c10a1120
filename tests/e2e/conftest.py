"""End-to-end rigs: real kiosks on mock pins in threads, a collector in-process or as a process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from collector.localbroker import free_port
from kiosk.clock import SystemClock
from kiosk.config import settings_from_dict
from kiosk.service import Kiosk
from kiosk.simulate import fake_gpio_panel, press_pin
from tests.collector.conftest import REGISTRY

PINS = (17, 27, 22, 23)


class KioskThread:
    """A real Kiosk running its own loop; the test presses its mock pins."""

    def __init__(self, tmp_path: Path, port: int, kiosk_id: str, counter: str, camera: object = None) -> None:
        self.settings = settings_from_dict(
            {
                "kiosk_id": kiosk_id,
                "counter": counter,
                "data_dir": str(tmp_path / kiosk_id),
                "mqtt": {"host": "127.0.0.1", "port": port},
                "panel": {"pins": list(PINS), "lockout_s": 0, "debounce_s": 0, "max_per_minute": 100000},
                "clock": {"assume_synced": True},
                "outbox": {"ack_timeout_s": 3},
            },
            base_dir=tmp_path,
        )
        self.panel, self.factory = fake_gpio_panel(PINS)
        self.kiosk = Kiosk(
            settings=self.settings,
            panel=self.panel,
            camera=camera,  # type: ignore[arg-type]
            clock=SystemClock(assume_synced=True),
        )
        self.pressed: list[int] = []  # scores pressed (button → score with the default mapping)
        self.thread = threading.Thread(target=self.kiosk.run, name=kiosk_id, daemon=True)
        self.thread.start()

    def press(self, button: int) -> None:
        press_pin(self.factory, PINS[button - 1], hold_s=0.0)
        self.pressed.append(self.settings.panel.scores[button - 1])
        time.sleep(0.02)

    def backlog(self) -> int:
        from kiosk.outbox import SqliteOutbox

        outbox = SqliteOutbox(self.settings.outbox_path)
        try:
            return outbox.backlog().ratings
        finally:
            outbox.close()

    def stop(self) -> None:
        self.kiosk.stop()
        self.thread.join(timeout=10)


@pytest.fixture
def kiosk_threads(tmp_path, broker):
    made: list[KioskThread] = []

    def make(kiosk_id: str, counter: str, camera: object = None) -> KioskThread:
        k = KioskThread(tmp_path / "kiosks", broker.port, kiosk_id, counter, camera)
        made.append(k)
        return k

    yield make
    for k in made:
        k.stop()


class CollectorProcess:
    """`collector serve` as its own process, so it can be SIGKILLed."""

    def __init__(self, tmp_path: Path, broker_port: int, extra: str = "") -> None:
        self.http_port = free_port()
        self.data_dir = tmp_path / "collector"
        self.config = tmp_path / "collector.toml"
        self.config.write_text(
            f'data_dir = "{self.data_dir}"\nregistry = "{REGISTRY}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n'
            f'[ingest]\nclient_id = "collector-e2e"\nbatch_wait_s = 0.05\n'
            f"[http]\nport = {self.http_port}\n{extra}"
        )
        self.log = open(tmp_path / "collector.log", "ab")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def collector_cli(config: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", *args, "--config", str(config)],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
