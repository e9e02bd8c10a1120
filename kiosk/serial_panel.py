"""A USB-serial panel (e.g. a Raspberry Pi Pico) speaking the line protocol of the contract.

Panel → kiosk: ``P1``..``P4`` (button pressed), ``H`` (heartbeat, at least every 5 s).
Kiosk → panel: ``L1``..``L4``/``L0`` (lamps), ``T`` (thank you), ``E`` (fault).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import serial

from kiosk.panel import OnPress

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_S = 15.0


class SerialButtonPanel:
    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
        max_backoff_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.name = f"serial:{url}"
        self.baudrate = baudrate
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.max_backoff_s = max_backoff_s
        self._monotonic = monotonic
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_heard: float | None = None
        self._thread: threading.Thread | None = None
        self.unknown_lines = 0

    @property
    def state(self) -> str:
        heard = self._last_heard
        if self._port is None or heard is None:
            return "missing"
        return "ok" if self._monotonic() - heard <= self.heartbeat_timeout_s else "missing"

    def start(self, on_press: OnPress) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_press,), name="serial-panel", daemon=True)
        self._thread.start()

    def show_choice(self, button: int) -> None:
        self._send(f"L{button}")

    def thank_you(self) -> None:
        self._send("T")

    def fault(self) -> None:
        self._send("E")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._close_port()

    # --- reading -------------------------------------------------------------

    def _run(self, on_press: OnPress) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._open()
                backoff = 1.0
                self._read_lines(on_press)
            except (serial.SerialException, OSError) as exc:
                if self._port is not None or backoff == 1.0:
                    log.warning("serial panel %s: %s — is the USB cable plugged in? retrying", self.url, exc)
                self._close_port()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _open(self) -> None:
        port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.5)
        with self._write_lock:
            self._port = port
        # Opening counts as hearing from it; no heartbeat within the timeout marks it missing.
        self._last_heard = self._monotonic()
        log.info("serial panel %s opened", self.url)

    def _read_lines(self, on_press: OnPress) -> None:
        buffer = b""
        while not self._stop.is_set():
            port = self._port
            if port is None:
                return
            chunk = port.read(64)
            if not chunk:
                continue
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                self._handle(raw.strip(b"\r ").decode("ascii", "replace"), on_press)
            if len(buffer) > 256:  # garbage without newlines: do not grow forever
                log.warning("serial panel %s: dropping %d bytes without a newline", self.url, len(buffer))
                buffer = b""

    def _handle(self, line: str, on_press: OnPress) -> None:
        if not line:
            return
        self._last_heard = self._monotonic()
        if line == "H":
            return
        if len(line) == 2 and line[0] == "P" and line[1] in "1234":
            on_press(int(line[1]))
            return
        self.unknown_lines += 1
        log.warning("serial panel %s: ignoring unknown line %r", self.url, line[:40])

    # --- writing -------------------------------------------------------------

    def _send(self, line: str) -> None:
        with self._write_lock:
            if self._port is None:
                return
            try:
                self._port.write((line + "\n").encode("ascii"))
            except (serial.SerialException, OSError) as exc:
                log.warning("serial panel %s: could not send %s: %s", self.url, line, exc)

    def _close_port(self) -> None:
        with self._write_lock:
            port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
