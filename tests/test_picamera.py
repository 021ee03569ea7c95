"""The Pi camera source's life cycle. A Pi camera cannot exist here, so ``picamera2`` is a stand-in module that
records what was called on it; everything else is the real source code."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from flowercam.sources.base import SourceError
from flowercam.sources.picamera import PiCameraSource


class FakeCamera:
    """Stands in for picamera2.Picamera2: one camera, busy until closed (as libcamera's is)."""

    busy = False
    fail_at: str | None = None

    def __init__(self) -> None:
        if FakeCamera.busy:
            raise RuntimeError("Failed to acquire camera: Device or resource busy")
        FakeCamera.busy = True
        self.started = False

    def create_preview_configuration(self, main: dict) -> dict:
        return {"main": main}

    def configure(self, config: dict) -> None:
        if FakeCamera.fail_at == "configure":
            raise RuntimeError("Invalid configuration")

    def start(self) -> None:
        if FakeCamera.fail_at == "start":
            raise RuntimeError("Failed to start camera: Input/output error")
        self.started = True

    def capture_array(self, stream: str) -> np.ndarray:
        return np.zeros((4, 6, 3), np.uint8) + np.array([1, 2, 3], np.uint8)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        FakeCamera.busy = False


@pytest.fixture
def fake_picamera2(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakeCamera))
    FakeCamera.busy, FakeCamera.fail_at = False, None
    return FakeCamera


@pytest.mark.parametrize("step", ["configure", "start"])
def test_a_failed_open_lets_the_camera_go_so_the_next_open_finds_it_free(fake_picamera2, step):
    fake_picamera2.fail_at = step
    with pytest.raises(SourceError, match="cannot start the Pi camera"):
        PiCameraSource().open()
    fake_picamera2.fail_at = None
    source = PiCameraSource()
    source.open()  # not "Device or resource busy"
    assert source.read()[0, 0].tolist() == [3, 2, 1]  # RGB888 is BGR in memory: turned to RGB
    source.close()
    assert not fake_picamera2.busy
