"""USB webcams, V4L2 devices, RTSP streams of a counter's CCTV camera, and video files."""

from __future__ import annotations

import logging
import threading

import cv2

from kiosk.errors import CameraError

log = logging.getLogger(__name__)


class OpenCvCamera:
    """A camera read through ``cv2.VideoCapture``; opened lazily and reopened after a failure."""

    def __init__(self, source: str | int, *, width: int = 640, jpeg_quality: int = 80, flush_frames: int = 4) -> None:
        self.source: str | int = int(source) if isinstance(source, str) and source.isdigit() else source
        self.name = str(source)
        self.width = width
        self.jpeg_quality = jpeg_quality
        self.flush_frames = flush_frames
        self._is_file = isinstance(self.source, str) and not (self.source.startswith("/dev/") or "://" in self.source)
        self._cap: cv2.VideoCapture | None = None
        self._lock = threading.Lock()

    def capture(self) -> bytes:
        with self._lock:
            cap = self._open()
            # Live cameras hand out frames buffered since the last read: drop them so the
            # picture shows the person pressing now, not whoever stood there before.
            if not self._is_file:
                for _ in range(self.flush_frames):
                    cap.grab()
            ok, frame = cap.read()
            if not ok and self._is_file:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # a demo video loops
                ok, frame = cap.read()
            if not ok or frame is None:
                self._release()
                raise CameraError(f"camera {self.name} gave no picture — is it connected and powered?")
            height, width = frame.shape[:2]
            if width > self.width:
                frame = cv2.resize(frame, (self.width, int(height * self.width / width)), interpolation=cv2.INTER_AREA)
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise CameraError(f"camera {self.name}: JPEG encoding failed")
            return bytes(buf)

    def close(self) -> None:
        with self._lock:
            self._release()

    def _open(self) -> cv2.VideoCapture:
        if self._cap is not None:
            return self._cap
        cap = cv2.VideoCapture(self.source)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"camera {self.name} not found — is the cable seated and the source right?")
        if not self._is_file:
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        log.info("camera %s opened", self.name)
        return cap

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
