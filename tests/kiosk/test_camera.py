import hashlib
import threading

import cv2
import numpy as np
import pytest

from kiosk.camera import SnapshotTaker
from kiosk.errors import CameraError
from kiosk.opencv_camera import OpenCvCamera
from tests.conftest import wait_for


@pytest.fixture
def video_file(tmp_path):
    """A short MJPEG video, read back through the same VideoCapture path as a webcam."""
    path = tmp_path / "counter.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for i in range(5):
        writer.write(np.full((240, 320, 3), i * 40, np.uint8))
    writer.release()
    return path


class HangingCamera:
    name = "hanging"

    def __init__(self):
        self.release = threading.Event()

    def capture(self):
        self.release.wait(10)
        return b"\xff\xd8late"

    def close(self):
        self.release.set()


class BrokenCamera:
    name = "broken"

    def capture(self):
        raise CameraError("camera /dev/video0 not found — is the cable seated?")

    def close(self):
        pass


def test_opencv_camera_reads_a_video_file_and_loops(video_file):
    camera = OpenCvCamera(str(video_file))
    pictures = [camera.capture() for _ in range(8)]  # more frames than the file has
    assert all(p[:2] == b"\xff\xd8" for p in pictures)
    camera.close()


def test_missing_camera_source_raises_camera_error(tmp_path):
    with pytest.raises(CameraError, match="not found"):
        OpenCvCamera(str(tmp_path / "nope.avi")).capture()


def test_snapshot_is_written_with_its_hash(video_file, tmp_path):
    results = []
    taker = SnapshotTaker(camera=OpenCvCamera(str(video_file)), directory=tmp_path / "snaps", on_result=results.append)
    taker.request("01936f0e-7c1a-7d4e-9a3b-1f2e3d4c5b6a")
    assert wait_for(lambda: results)
    result = results[0]
    data = open(result.path, "rb").read()
    assert result.error is None and result.nbytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert taker.state == "ok"
    taker.stop()


def test_hung_camera_gives_timeout_and_error_state(tmp_path):
    results = []
    camera = HangingCamera()
    taker = SnapshotTaker(camera=camera, directory=tmp_path, on_result=results.append, timeout_s=0.3)
    taker.request("a")
    taker.request("b")
    assert wait_for(lambda: taker.state == "error")
    camera.release.set()
    assert wait_for(lambda: len(results) == 2)
    assert [r.error for r in results] == ["timeout", "timeout"]
    taker.stop()


def test_broken_camera_is_retried_later(tmp_path):
    results = []
    taker = SnapshotTaker(camera=BrokenCamera(), directory=tmp_path, on_result=results.append, retry_s=60)
    taker.request("a")
    taker.request("b")
    assert wait_for(lambda: len(results) == 2)
    assert [r.error for r in results] == ["camera_unavailable"] * 2
    assert taker.state == "error"
    taker.stop()
