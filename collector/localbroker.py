"""Start a private Mosquitto on a loopback port with the project's config (demo and tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from collector.errors import CollectorError
from kiosk.shipped import shipped_file

PROJECT_CONFIG = shipped_file(__file__, "mosquitto/local.conf")


class BrokerError(CollectorError, RuntimeError):
    """The local broker would not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise BrokerError("mosquitto is not installed — run scripts/setup (it installs it with apt)")
    return found


class LocalBroker:
    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        config: Path = PROJECT_CONFIG,
        extra: str = "",
        own_listener: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config = config
        self.extra = extra
        self.own_listener = own_listener  # the config has its own listener on ``port`` (TLS)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto-run.conf"  # never the config it was made from

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def start(self, timeout_s: float = 10.0) -> LocalBroker:
        text = self.config.read_text()
        if not self.own_listener:
            text += f"\nlistener {self.port} 127.0.0.1\npersistence_location {self.workdir}/\n"
        text += f"\n# added by collector.localbroker\nlog_dest file {self.log_path}\n{self.extra}\n"
        if os.geteuid() == 0:
            # Run as root, Mosquitto drops to the 'mosquitto' user, which cannot write here.
            text += "user root\n"
        self.conf_path.write_text(text)
        self.process = subprocess.Popen(
            [find_mosquitto(), "-c", str(self.conf_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise BrokerError(f"mosquitto exited at start: {err.strip()} {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise BrokerError(f"mosquitto did not listen on {self.port} within {timeout_s} s {self._log_tail()}")

    def stop(self) -> None:
        """Orderly stop: Mosquitto writes its persistence file first."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _end(self, sig: int) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def _log_tail(self) -> str:
        try:
            return "log: " + self.log_path.read_text()[-800:]
        except OSError:
            return ""
