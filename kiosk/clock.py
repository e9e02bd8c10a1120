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
import threading
import time
import uuid
from dataclasses import dataclass
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


DRIFT_PPM = 100.0  # a Pi's crystal is good to ~50 ppm; twice that for the estimate's error
MAX_ROUND_TRIP_S = 10.0  # an answer slower than this says too little about the time to use


AGREE_S = 1.0  # two estimates further apart than their errors and this disagree


@dataclass(frozen=True)
class TimeEstimate:
    """The collector's clock as seen from this boot: ``wall = since_boot + offset_s``."""

    offset_s: float
    error_s: float  # half the round trip of the sample, plus drift since
    sampled_at: float  # boot-clock seconds of the sample


class CollectorTime:
    """Wall time taken from the collector's acks, for a kiosk whose NTP is blocked.

    Each ack carries the collector's time ``at``; an ack that answers a status (it names no
    rating) was sent between the status going out (``sent``) and the ack coming in
    (``received``), both on the boot clock. So ``offset = at - (sent + received) / 2`` with an
    error of half the round trip. A new sample replaces the estimate when it is at least as good
    as the old one has become with the boot clock's drift, so a slow answer over 3G never
    overrides a fast one from a minute ago. A sample that disagrees with the estimate by more than
    both errors allow (one collector host whose clock is wrong) is believed only when the next
    sample says the same (the collector's clock was stepped, or the first estimate was the wrong
    one). Thread-safe: the publisher writes, presses read.
    """

    def __init__(self, *, drift_ppm: float = DRIFT_PPM, max_round_trip_s: float = MAX_ROUND_TRIP_S) -> None:
        self.drift = drift_ppm * 1e-6
        self.max_round_trip_s = max_round_trip_s
        self._best: TimeEstimate | None = None
        self._doubt: TimeEstimate | None = None  # a disagreeing sample, waiting for a second opinion
        self._lock = threading.Lock()
        self.samples = 0
        self.disagreed = 0

    def observe(self, *, at: float, sent: float, received: float) -> bool:
        """One answer; True when it became the estimate."""
        round_trip = received - sent
        if not 0 <= round_trip <= self.max_round_trip_s:
            return False
        sample = TimeEstimate(offset_s=at - (sent + received) / 2, error_s=round_trip / 2, sampled_at=received)
        with self._lock:
            self.samples += 1
            current = self._best
            if current is not None and not self._agree(sample, current, received):
                self.disagreed += 1
                doubt, self._doubt = self._doubt, sample
                if doubt is None or not self._agree(sample, doubt, received):
                    return False  # alone against the estimate: wait for a second opinion
                self._best, self._doubt = sample, None  # two in a row: the estimate was the wrong one
                return True
            self._doubt = None
            if current is None or sample.error_s <= self._aged_error(current, received):
                self._best = sample
                return True
            return False

    def _agree(self, sample: TimeEstimate, other: TimeEstimate, now: float) -> bool:
        return abs(sample.offset_s - other.offset_s) <= sample.error_s + self._aged_error(other, now) + AGREE_S

    def estimate(self, now: float) -> TimeEstimate | None:
        """The estimate at boot-clock ``now``, its error grown by the drift since the sample."""
        with self._lock:
            best = self._best
        if best is None:
            return None
        return TimeEstimate(best.offset_s, self._aged_error(best, now), best.sampled_at)

    def _aged_error(self, sample: TimeEstimate, now: float) -> float:
        return sample.error_s + max(0.0, now - sample.sampled_at) * self.drift


@dataclass(frozen=True)
class Stamp:
    """The time of an event and where it came from."""

    wall: float
    since_boot_s: float
    clock: str  # synced (NTP), corrected (from the collector's time), unsynced
    error_s: float | None = None


def stamp(clock: Clock, collector_time: CollectorTime | None) -> Stamp:
    """Now, from the best source: NTP when it works, else the collector's time, else the bare clock."""
    since_boot = clock.since_boot()
    if clock.is_synced():
        return Stamp(clock.wall(), since_boot, "synced")
    estimate = collector_time.estimate(since_boot) if collector_time is not None else None
    if estimate is not None:
        return Stamp(since_boot + estimate.offset_s, since_boot, "corrected", estimate.error_s)
    return Stamp(clock.wall(), since_boot, "unsynced")


def clock_source(label: str) -> str:
    """The status ``clock_source`` for a stamp's clock label."""
    return {"synced": "ntp", "corrected": "collector"}.get(label, "none")


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
