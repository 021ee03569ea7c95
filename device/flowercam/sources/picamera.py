"""The Raspberry Pi camera through picamera2 (Raspberry Pi OS's ``python3-picamera2``)."""

from __future__ import annotations

import contextlib

import numpy as np

from .base import FrameSource, SourceError


class PiCameraSource(FrameSource):
    """Picamera2 still-preview stream, RGB888 at ``size``; frames captured on demand."""

    name = "picamera2"

    def __init__(self, size: tuple[int, int] = (640, 480)) -> None:
        self.size = size
        self._camera = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError("picamera2 is not installed (on Raspberry Pi OS: apt install python3-picamera2)") \
                from None
        camera = None
        try:
            camera = Picamera2()
            # "RGB888" is BGR in memory order in picamera2; converted in read()
            camera.configure(camera.create_preview_configuration(main={"size": self.size, "format": "RGB888"}))
            camera.start()
        except Exception as err:  # libcamera raises many types; all mean "no usable camera"
            if camera is not None:  # else the next reconnect finds the camera busy
                with contextlib.suppress(Exception):  # a camera that failed half-way may refuse; keep why it failed
                    camera.close()
            raise SourceError(f"cannot start the Pi camera: {err}") from None
        self._camera = camera

    def read(self) -> np.ndarray | None:
        if self._camera is None:
            raise SourceError("picamera2 is not open")
        try:
            frame = self._camera.capture_array("main")
        except Exception as err:
            raise SourceError(f"Pi camera stopped delivering frames: {err}") from None
        return np.ascontiguousarray(frame[..., ::-1])

    def close(self) -> None:
        if self._camera is not None:
            camera, self._camera = self._camera, None
            with contextlib.suppress(Exception):  # stopped already, or never started
                camera.stop()
            camera.close()

