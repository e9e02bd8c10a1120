"""Raspberry Pi CSI cameras (libcamera), which OpenCV cannot open on current Raspberry Pi OS.

Needs Debian's ``python3-picamera2`` (a system package; the kiosk's virtual environment must
be created with ``--system-site-packages`` to see it). Imported only when configured.
"""

from __future__ import annotations

import logging
import threading

from kiosk.errors import CameraError

log = logging.getLogger(__name__)


class Picamera2Camera:
    name = "picamera2"

    def __init__(self, *, width: int = 640, height: int = 480, jpeg_quality: int = 80) -> None:
        self.width = width
        self.height = height
        self.jpeg_quality = jpeg_quality
        self._camera = None
        self._lock = threading.Lock()

    def capture(self) -> bytes:
        import cv2

        with self._lock:
            camera = self._open()
            try:
                frame = camera.capture_array("main")
            except Exception as exc:  # picamera2 raises plain RuntimeErrors
                self._release()
                raise CameraError(f"CSI camera gave no picture ({exc}) — is the ribbon cable seated?") from exc
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
            )
            if not ok:
                raise CameraError("CSI camera: JPEG encoding failed")
            return bytes(buf)

    def close(self) -> None:
        with self._lock:
            self._release()

    def _open(self):  # type: ignore[no-untyped-def]
        if self._camera is not None:
            return self._camera
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise CameraError("picamera2 is not installed — apt install python3-picamera2") from exc
        try:
            camera = Picamera2()
            camera.configure(
                camera.create_still_configuration(main={"size": (self.width, self.height), "format": "RGB888"})
            )
            camera.start()
        except Exception as exc:
            raise CameraError(f"CSI camera not found ({exc}) — is it enabled and the cable seated?") from exc
        self._camera = camera
        return camera

    def _release(self) -> None:
        if self._camera is not None:
            try:
                self._camera.close()
            finally:
                self._camera = None
