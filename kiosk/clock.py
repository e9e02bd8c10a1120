"""Wall clock, boot-time clock and NTP state.

A Raspberry Pi has no real-time clock: until NTP answers, the wall clock may be days off.
Presses are stamped with both clocks; once the wall clock is synchronised, presses of the
same boot are corrected from the boot-time clock (``CLOCK_BOOTTIME`` keeps counting through
suspend, unlike ``CLOCK_MONOTONIC``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
import uuid
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_TIME_ERROR = 5  # adjtimex(): the kernel clock is not synchronised
_TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
CLOCK_OFFSET_FILE = "fake-clock-offset-s"  # in data_dir, read by a --fake-hardware kiosk


class Clock(Protocol):
    boot_id: str

    def wall(self) -> float:
        """Seconds since the Unix epoch, as the wall clock says."""

    def since_boot(self) -> float:
        """Seconds since this boot; never jumps."""

    def is_synced(self) -> bool:
        """True when the wall clock is NTP-synchronised."""


class SystemClock:
    """The Pi's own clocks; sync state from the kernel (``adjtimex``), which chrony,
    ntpd and systemd-timesyncd all keep up to date."""

    def __init__(self, *, assume_synced: bool = False) -> None:
        self.assume_synced = assume_synced
        self.boot_id = _read_boot_id()
        self._adjtimex = _load_adjtimex()

    def wall(self) -> float:
        return time.time()

    def since_boot(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def is_synced(self) -> bool:
        if self.assume_synced:
            return True
        if self._adjtimex is not None:
            buf = ctypes.create_string_buffer(512)  # larger than any struct timex; modes = 0
            state = self._adjtimex(buf)
            if state >= 0:
                return state != _TIME_ERROR
        return _TIMESYNC_FLAG.exists()


class SteppableClock(SystemClock):
    """The system clock plus an offset read from a file, for ``kiosk run --fake-hardware``: a
    soak or a technician steps the simulated kiosk's wall clock (as NTP stepping a Pi's clock
    would) by writing seconds into ``offset_file``. The boot-time clock never steps."""

    def __init__(self, offset_file: Path, *, assume_synced: bool = False) -> None:
        super().__init__(assume_synced=assume_synced)
        self.offset_file = offset_file
        self._offset = 0.0
        self._read_at = -1.0

    def wall(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= 1.0:
            self._read_at = now
            try:
                self._offset = float(self.offset_file.read_text().strip() or 0)
            except FileNotFoundError:
                self._offset = 0.0
            except (OSError, ValueError) as exc:
                log.warning(
                    "clock offset file %s unreadable (%s); offset stays %+.0f s", self.offset_file, exc, self._offset
                )
        return time.time() + self._offset


class FakeClock:
    """A clock a test or the simulator moves by hand."""

    def __init__(self, wall: float = 1_795_000_000.0, *, synced: bool = True, boot_id: str = "fake-boot") -> None:
        self._wall = wall
        self._boot = 100.0
        self.synced = synced
        self.boot_id = boot_id

    def wall(self) -> float:
        return self._wall

    def since_boot(self) -> float:
        return self._boot

    def is_synced(self) -> bool:
        return self.synced

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._boot += seconds

    def set_wall(self, wall: float, *, synced: bool = True) -> None:
        """NTP steps the wall clock; the boot clock does not move."""
        self._wall = wall
        self.synced = synced


def _read_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        # Not Linux: one id per process is the closest safe stand-in.
        return str(uuid.uuid4())


def _load_adjtimex():  # type: ignore[no-untyped-def]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        func = ctypes.CDLL(name, use_errno=True).adjtimex
    except (OSError, AttributeError):
        log.info("adjtimex() not available; reading %s for the NTP state", _TIMESYNC_FLAG)
        return None
    func.restype = ctypes.c_int
    return func
