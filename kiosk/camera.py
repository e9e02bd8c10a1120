"""Snapshots at each accepted press, taken beside the rating and never in its way.

:class:`SnapshotTaker` runs the camera on its own thread. A slow, hung or missing camera
only ever turns into a ``snapshot_error`` on the rating; the rating itself was committed
before the picture was asked for.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Protocol

from kiosk.errors import CameraError
from kiosk.files import write_atomically
from kiosk.wire import MAX_SNAPSHOT_BYTES

log = logging.getLogger(__name__)


class Camera(Protocol):
    name: str

    def capture(self) -> bytes:
        """One fresh JPEG picture; raises CameraError when there is none."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class SnapshotResult:
    rating_id: str
    path: str | None = None
    sha256: str | None = None
    nbytes: int = 0
    taken_epoch: float = 0.0
    error: str | None = None


class SnapshotTaker:
    """Takes pictures on a worker thread and reports each result through ``on_result``."""

    def __init__(
        self,
        *,
        camera: Camera | None,
        directory: Path,
        on_result: Callable[[SnapshotResult], None],
        timeout_s: float = 3.0,
        retry_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.camera = camera
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.on_result = on_result
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._monotonic = monotonic
        self._requests: queue.Queue[tuple[str, float] | None] = queue.Queue()
        self._failed_at: float | None = None
        self._busy_since: float | None = None
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    @property
    def state(self) -> str:
        """``ok``, ``error`` or ``disabled`` — as the status message reports it."""
        if self.camera is None:
            return "disabled"
        busy = self._busy_since
        if busy is not None and self._monotonic() - busy > self.timeout_s:
            return "error"  # hung inside capture()
        return "error" if self._failed_at is not None else "ok"

    def request(self, rating_id: str) -> None:
        self._requests.put((rating_id, self._monotonic()))

    def stop(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=self.timeout_s + 1)
        if self.camera is not None and not self._thread.is_alive():
            self.camera.close()

    def _run(self) -> None:
        while True:
            item = self._requests.get()
            if item is None:
                return
            rating_id, asked_at = item
            try:
                self.on_result(self._take(rating_id, asked_at))
            except Exception:  # keep the camera thread alive whatever happens
                log.exception("snapshot for %s failed unexpectedly", rating_id)
                self.on_result(SnapshotResult(rating_id, error="camera_failed"))

    def _take(self, rating_id: str, asked_at: float) -> SnapshotResult:
        if self.camera is None:
            return SnapshotResult(rating_id, error="camera_disabled")
        now = self._monotonic()
        if now - asked_at > self.timeout_s:
            return SnapshotResult(rating_id, error="timeout")
        if self._failed_at is not None and now - self._failed_at < self.retry_s:
            return SnapshotResult(rating_id, error="camera_unavailable")
        self._busy_since = now
        try:
            jpeg = self.camera.capture()
        except CameraError as exc:
            if self._failed_at is None:
                log.warning("%s", exc)
            self._failed_at = self._monotonic()
            self.last_error = str(exc)
            return SnapshotResult(rating_id, error="camera_unavailable")
        finally:
            self._busy_since = None
        if self._failed_at is not None:
            log.info("camera %s is back", self.camera.name)
        self._failed_at = None
        if self._monotonic() - asked_at > self.timeout_s:
            return SnapshotResult(rating_id, error="timeout")
        if len(jpeg) > MAX_SNAPSHOT_BYTES:
            return SnapshotResult(rating_id, error="too_large")
        path = self.directory / f"{rating_id}.jpg"
        write_atomically(path, jpeg)
        return SnapshotResult(
            rating_id,
            path=str(path),
            sha256=hashlib.sha256(jpeg).hexdigest(),
            nbytes=len(jpeg),
            taken_epoch=time.time(),
        )


class GeneratedCamera:
    """A camera for laptops and demos: draws a frame with the time on it."""

    name = "generated"

    def __init__(self, *, width: int = 320, height: int = 240, label: str = "kiosk", tz: tzinfo | None = None) -> None:
        self.width = width
        self.height = height
        self.label = label
        self.tz = tz  # the stamp's time zone (the office's); None: the machine's
        self._frame = 0

    def capture(self) -> bytes:
        import cv2
        import numpy as np

        self._frame += 1
        shade = (self._frame * 37) % 200
        image = np.full((self.height, self.width, 3), (40 + shade // 2, 90, 160 - shade // 2), np.uint8)
        cv2.putText(image, self.label, (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        cv2.putText(
            image,
            datetime.now(self.tz).strftime("%d/%m/%Y %H:%M:%S"),  # local time, as the pages show it
            (10, self.height - 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            (255, 255, 255),
            1,
        )
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise CameraError("could not encode a generated frame")
        return bytes(buf)

    def close(self) -> None:
        pass
