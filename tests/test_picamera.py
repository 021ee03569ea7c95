"""The Pi camera source's life cycle. A Pi camera cannot exist here, so ``picamera2`` is a stand-in module; it
behaves as the Picamera2 manual documents the calls the source makes (not as the source happens to use them):

- ``Picamera2(camera_num=0)`` acquires the camera; a second one while it is held fails ("Device or resource busy")
  until ``close()``;
- ``create_preview_configuration(main={"size": (w, h), "format": ...})`` takes keyword arguments; ``size`` is
  (width, height); the formats are those of the manual's Appendix A;
- ``configure`` before ``start``; ``capture_array(name="main")`` on a started camera returns (height, width, 3)
  for RGB888/BGR888, where **RGB888 is laid out [B, G, R]** and BGR888 [R, G, B], and (height, width, 4) for
  XRGB8888/XBGR8888; ``stop`` then ``close``.

Everything else is the real source code."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from flowercam.sources.base import SourceError
from flowercam.sources.picamera import PiCameraSource

SCENE_RGB = (200, 120, 40)  # what the sensor sees: an orange flower
LAYOUT = {"RGB888": (2, 1, 0), "BGR888": (0, 1, 2), "XRGB8888": (2, 1, 0, None), "XBGR8888": (0, 1, 2, None)}


class FakeCamera:
    """Stands in for picamera2.Picamera2 (one camera, as the manual describes it)."""

    busy = False
    fail_at: str | None = None

    def __init__(self, camera_num: int = 0) -> None:
        if FakeCamera.busy:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        FakeCamera.busy = True
        self.configured: dict | None = None
        self.started = False

    def create_preview_configuration(self, main: dict | None = None, lores=None, raw=None, transform=None,
                                     colour_space=None, buffer_count: int = 4, controls=None, display="main",
                                     encode="main", queue: bool = True, sensor=None, use_case: str = "preview"
                                     ) -> dict:
        main = {"format": "XBGR8888", "size": (640, 480), **(main or {})}
        return {"use_case": use_case, "buffer_count": buffer_count, "main": main}

    def configure(self, config: dict) -> None:
        if FakeCamera.fail_at == "configure":
            raise RuntimeError("Invalid configuration")
        main = config["main"]
        if main["format"] not in LAYOUT:
            raise RuntimeError(f"Format {main['format']} not supported")
        width, height = main["size"]  # (width, height)
        assert isinstance(width, int) and isinstance(height, int)
        self.configured = main

    def start(self) -> None:
        if self.configured is None:
            raise RuntimeError("Camera has not been configured")
        if FakeCamera.fail_at == "start":
            raise RuntimeError("Failed to start camera: Input/output error")
        self.started = True

    def capture_array(self, name: str = "main") -> np.ndarray:
        if not self.started:
            raise RuntimeError("Camera is not running")
        width, height = self.configured["size"]
        pixel = [255 if channel is None else SCENE_RGB[channel] for channel in LAYOUT[self.configured["format"]]]
        return np.broadcast_to(np.array(pixel, np.uint8), (height, width, len(pixel))).copy()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        FakeCamera.busy = False


@pytest.fixture
def fake_picamera2(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakeCamera))
    FakeCamera.busy, FakeCamera.fail_at = False, None
    return FakeCamera


def test_frames_are_rgb_at_the_asked_size(fake_picamera2):
    source = PiCameraSource(size=(320, 240))
    source.open()
    frame = source.read()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8 and frame.flags.c_contiguous
    assert frame[0, 0].tolist() == list(SCENE_RGB)  # the flower's colours, not swapped
    source.close()
    assert not fake_picamera2.busy


@pytest.mark.parametrize("step", ["configure", "start"])
def test_a_failed_open_lets_the_camera_go_so_the_next_open_finds_it_free(fake_picamera2, step):
    fake_picamera2.fail_at = step
    with pytest.raises(SourceError, match="cannot start the Pi camera"):
        PiCameraSource().open()
    fake_picamera2.fail_at = None
    source = PiCameraSource()
    source.open()  # not "Device or resource busy"
    assert source.read()[0, 0].tolist() == list(SCENE_RGB)
    source.close()
    assert not fake_picamera2.busy
