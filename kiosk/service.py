"""The kiosk: turns presses into committed ratings and keeps the pieces around them going.

Panel, camera and MQTT callbacks arrive on their own threads; they only put events on one
queue, and this loop — the only writer of presses — handles them in order.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
from dataclasses import dataclass
from typing import Any

from kiosk import __version__, systemd, wire
from kiosk.camera import Camera, SnapshotResult, SnapshotTaker
from kiosk.clock import Clock
from kiosk.config import KioskSettings
from kiosk.errors import OutboxError
from kiosk.files import remove_file
from kiosk.outbox import OutboxRow, SqliteOutbox
from kiosk.panel import ButtonPanel
from kiosk.press import Outcome, PressGate
from kiosk.publisher import MqttPublisher
from kiosk.selftest import last_selftest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Press:
    button: int
    wall: float
    since_boot_s: float
    synced: bool


class Kiosk:
    def __init__(
        self,
        *,
        settings: KioskSettings,
        panel: ButtonPanel,
        camera: Camera | None,
        clock: Clock,
        connect: bool = True,
    ) -> None:
        self.settings = settings
        self.panel = panel
        self.clock = clock
        self.gate = PressGate(settings.panel.rules())
        self.events: queue.Queue[Press | SnapshotResult] = queue.Queue()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.outbox = SqliteOutbox(settings.outbox_path)
        # Pictures asked for before a crash or power cut will never come.
        self.outbox.expire_pending_snapshots(boot_id="", since_boot_s=float("inf"), error="interrupted")
        self.snapshots = SnapshotTaker(
            camera=camera,
            directory=settings.snapshot_dir,
            on_result=self.events.put,
            timeout_s=settings.camera.timeout_s,
        )
        self.publisher = MqttPublisher(
            kiosk_id=settings.kiosk_id,
            outbox_path=settings.outbox_path,
            settings=settings.mqtt,
            status_source=self.status,
            is_ready=self.is_ready,
            ack_timeout_s=settings.outbox.ack_timeout_s,
            ack_timeout_max_s=settings.outbox.ack_timeout_max_s,
            status_interval_s=settings.outbox.status_interval_s,
            wall=clock.wall,
        )
        self._connect = connect
        self._started_at = clock.since_boot()
        self._unsynced_pending = True  # check once at start for leftovers of this boot
        self._unstored: list[tuple[Press, str | None]] = []  # the disk refused them; retried
        self._last_press_epoch = self.outbox.last_press_epoch()
        self._suppressed = self.outbox.suppressed_presses
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._timers: dict[str, float] = {}
        self._started = False
        self._selftest = last_selftest(settings)  # the self-test runs while the service is stopped

    # --- life cycle ---------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.panel.start(self._on_press)
        if self._connect:
            self.publisher.start()
        systemd.notify("READY=1")
        log.info(
            "kiosk %s at counter %s ready (install %s, fw %s)",
            self.settings.kiosk_id,
            self.settings.counter,
            self.outbox.install_id,
            __version__,
        )

    def run(self) -> None:
        """Handle events until :meth:`stop` is called (starts the kiosk if not started)."""
        self.start()
        try:
            while not self._stop.is_set():
                self.run_once(timeout_s=0.5)
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        systemd.notify("STOPPING=1")
        if self._connect:
            self.publisher.stop()
        self.snapshots.stop()
        self.panel.close()
        self._write_state()
        self.outbox.close()

    def run_once(self, timeout_s: float = 0.0) -> None:
        try:
            event = self.events.get(timeout=timeout_s) if timeout_s else self.events.get_nowait()
        except queue.Empty:
            event = None
        try:
            if isinstance(event, Press):
                self.handle_press(event)
            elif isinstance(event, SnapshotResult):
                self.handle_snapshot(event)
            self.housekeeping()
        except Exception as exc:  # the kiosk must keep answering presses
            self.last_error = str(exc)
            log.exception("kiosk loop error; carrying on")

    # --- presses ------------------------------------------------------------

    def _on_press(self, button: int) -> None:
        # Panel thread: stamp it now, decide later.
        self.events.put(Press(button, self.clock.wall(), self.clock.since_boot(), self.clock.is_synced()))

    def handle_press(self, press: Press) -> None:
        verdict = self.gate.judge(press.button, press.since_boot_s)
        if verdict.outcome is Outcome.BOUNCE:
            return
        if verdict.outcome is Outcome.SUPPRESSED:
            self.outbox.count_suppressed()
            self._suppressed += 1
            return
        if not self._store(press, verdict.flag):
            self._unstored.append((press, verdict.flag))
            self.panel.fault()
            return
        if verdict.outcome is Outcome.RATING:
            self.panel.show_choice(press.button)
            self.panel.thank_you()

    def _store(self, press: Press, flag: str | None) -> bool:
        has_camera = self.snapshots.camera is not None
        if flag is not None:
            snapshot_state, snapshot_error = "none", None
        elif has_camera:
            snapshot_state, snapshot_error = "pending", None
        else:
            snapshot_state, snapshot_error = "error", "camera_disabled"
        try:
            stored = self.outbox.record_press(
                counter=self.settings.counter,
                score=self.settings.panel.scores[press.button - 1],
                flag=flag,
                pressed_epoch=press.wall,
                clock="synced" if press.synced else "unsynced",
                boot_id=self.clock.boot_id,
                since_boot_s=press.since_boot_s,
                fw=__version__,
                snapshot_state=snapshot_state,
                snapshot_error=snapshot_error,
            )
        except OutboxError as exc:
            self.last_error = str(exc)
            log.error("%s — press kept in memory and retried", exc)
            return False
        if not press.synced:
            self._unsynced_pending = True
        if flag is None:
            self._last_press_epoch = press.wall
            if snapshot_state == "pending":
                self.snapshots.request(stored.id)
        self.publisher.wake()
        return True

    def handle_snapshot(self, result: SnapshotResult) -> None:
        if result.error is not None:
            self.outbox.fail_snapshot(result.rating_id, result.error)
        elif result.path is not None and result.sha256 is not None:
            attached = self.outbox.attach_snapshot(
                result.rating_id,
                path=result.path,
                sha256=result.sha256,
                nbytes=result.nbytes,
                taken_epoch=result.taken_epoch,
            )
            if not attached:
                remove_file(result.path)  # too late: the rating went without it
        self.publisher.wake()

    # --- readiness and status (called from the publisher's thread) ----------

    def is_ready(self, row: OutboxRow) -> bool:
        """A row may go out once its picture is settled and its clock as good as it will get."""
        if row.snapshot_state == "pending":
            return False
        if row.clock == "unsynced" and row.boot_id == self.clock.boot_id:
            waited = self.clock.since_boot() - row.since_boot_s
            return waited >= self.settings.clock.unsynced_hold_s
        return True

    def status(self, outbox: SqliteOutbox) -> dict[str, Any]:
        backlog = outbox.backlog()
        return {
            "kiosk": self.settings.kiosk_id,
            "state": "online",
            "at": wire.format_epoch(self.clock.wall()),
            "fw": __version__,
            "install": outbox.install_id,
            "boot": self.clock.boot_id,
            "uptime_s": int(self.clock.since_boot() - self._started_at),
            "counter": self.settings.counter,
            "backlog": {"ratings": backlog.ratings, "snapshots": backlog.snapshots, "oldest_at": backlog.oldest_at},
            "camera": self.snapshots.state,
            "clock": "synced" if self.clock.is_synced() else "unsynced",
            "disk_free_mb": _disk_free_mb(self.settings.data_dir),
            "suppressed_presses": self._suppressed,
            "last_press_at": None if self._last_press_epoch is None else wire.format_epoch(self._last_press_epoch),
            "panel": self.panel.state,
            "selftest": self._selftest,
        }

    # --- housekeeping -------------------------------------------------------

    def housekeeping(self) -> None:
        now = self.clock.since_boot()
        if self._unstored and self._due("retry", now, 5.0):
            waiting, self._unstored = self._unstored, []
            for press, flag in waiting:
                if not self._store(press, flag):
                    self._unstored.append((press, flag))
        stale = self.outbox.expire_pending_snapshots(
            boot_id=self.clock.boot_id,
            since_boot_s=now - self.settings.camera.timeout_s - 1.0,
            error="timeout",
        )
        if stale:
            self.publisher.wake()
        if self._unsynced_pending and self.clock.is_synced():
            fixed = self.outbox.correct_unsynced(boot_id=self.clock.boot_id, wall_minus_boot_s=self.clock.wall() - now)
            self._unsynced_pending = False
            if fixed:
                log.info("clock synchronised: corrected %d press time(s) from the boot clock", fixed)
                self.publisher.wake()
        if self._due("prune", now, 3600.0):
            retention_s = self.settings.outbox.retention_days * 86400
            gone = self.outbox.prune(older_than_epoch=self.clock.wall() - retention_s)
            if gone:
                log.info(
                    "pruned %d acked rating(s) older than %.0f days",
                    gone,
                    self.settings.outbox.retention_days,
                )
        if self._due("pictures", now, 60.0):
            for path in self.outbox.drop_snapshot_files(self.settings.camera.max_storage_mb * 1024 * 1024):
                log.warning("picture budget full: dropping undelivered snapshot %s", path)
                remove_file(path)
        if self._due("state", now, 10.0):
            self._write_state()
        if self._due("watchdog", now, 5.0):
            systemd.notify("WATCHDOG=1")

    def _due(self, name: str, now: float, every_s: float) -> bool:
        last = self._timers.get(name)
        if last is not None and now - last < every_s:
            return False
        self._timers[name] = now
        return True

    def _write_state(self) -> None:
        """A small file for `kiosk status` (the outbox holds the truth; this holds the mood)."""
        state = {
            "at": wire.format_epoch(self.clock.wall()),
            "kiosk": self.settings.kiosk_id,
            "connected": self.publisher.connected,
            "camera": self.snapshots.state,
            "panel": self.panel.state,
            "clock": "synced" if self.clock.is_synced() else "unsynced",
            "last_error": self.last_error or self.publisher.last_error or self.snapshots.last_error,
            "unstored_presses": len(self._unstored),
        }
        tmp = self.settings.state_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(state, indent=1))
            os.replace(tmp, self.settings.state_path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.settings.state_path, exc)


def _disk_free_mb(path: os.PathLike[str] | str) -> int:
    try:
        return int(shutil.disk_usage(path).free // (1024 * 1024))
    except OSError:
        return 0
