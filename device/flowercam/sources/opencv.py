"""USB cameras, video files and stream URLs through OpenCV (the ``camera`` extra)."""

from __future__ import annotations

import os

import numpy as np

from .base import FrameSource, SourceError

STREAM_TIMEOUT_S = 5.0  # a stream URL that accepts and never answers fails after this, well within WatchdogSec


class OpenCVSource(FrameSource):
    """``cv2.VideoCapture`` on a camera index, a file path or a URL."""

    def __init__(self, target: int | str) -> None:
        self.target = target
        from . import redact

        self.name = f"opencv:{target}" if isinstance(target, int) else redact(str(target))
        self.live = isinstance(target, int) or "://" in str(target)
        self._capture = None

    def open(self) -> None:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # our own one-line errors, not OpenCV's warnings
        try:
            import cv2
        except ImportError:
            raise SourceError("OpenCV is not installed: pip install 'flowercam[camera]'") from None
        if self.live and isinstance(self.target, str):  # a stream: bound open and read (FFmpeg waits ~30 s)
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(STREAM_TIMEOUT_S * 1000),
                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(STREAM_TIMEOUT_S * 1000)]
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, timeouts)
        else:
            capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.name}")
        self._capture = capture

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        return np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
