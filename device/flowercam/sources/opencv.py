"""USB cameras, video files and stream URLs through OpenCV (the ``camera`` extra)."""

from __future__ import annotations

import os
import time

import numpy as np

from .base import FrameSource, SourceError

STREAM_TIMEOUT_S = 5.0  # a stream URL that accepts and never answers fails after this, well within WatchdogSec
MAX_SIDE = 2048  # px: a larger frame is shrunk as it is captured (the model reads 288 px; memory stays bounded)
MAX_BAD_IN_A_ROW = 25  # undecodable frames in a row after which the source counts as gone (or a file as ended)


class OpenCVSource(FrameSource):
    """``cv2.VideoCapture`` on a camera index, a file path or a URL."""

    def __init__(self, target: int | str) -> None:
        self.target = target
        from . import redact

        self.name = f"opencv:{target}" if isinstance(target, int) else redact(str(target))
        # a camera or a stream is live (frames in between are dropped); a file, also as file://, is paced
        self.live = isinstance(target, int) or ("://" in str(target) and not str(target).startswith("file://"))
        self._capture = None
        self._reduced = None  # for huge MJPEG frames: the imdecode flag that decodes them at 1/2, 1/4 or 1/8
        self.bad_frames = 0  # frames that could not be decoded and were skipped

    def open(self) -> None:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # our own one-line errors, not OpenCV's warnings
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # nor FFmpeg's (a bad frame is counted instead)
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
        self._reduced = _reduced_decoding(cv2, capture) if isinstance(self.target, str) else None

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            raise SourceError(f"{self.name} is not open")
        import cv2

        first_failure = None
        for _ in range(MAX_BAD_IN_A_ROW):
            ok, frame = self._capture.read()
            if ok and frame is not None and self._reduced is not None:  # a JPEG packet: decoded at a fraction
                frame = cv2.imdecode(frame, self._reduced)
                ok = frame is not None
            if ok and frame is not None:
                if max(frame.shape[:2]) > MAX_SIDE:
                    scale = MAX_SIDE / max(frame.shape[:2])
                    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if not self._bad_frame(cv2, first_failure := first_failure or time.monotonic()):
                return None
            self.bad_frames += 1
        return None

    def video_time_s(self) -> float | None:
        if self.live or self._capture is None:
            return None
        import cv2

        position = self._capture.get(cv2.CAP_PROP_POS_MSEC)  # after read(): the frame just read
        return position / 1000 if position >= 0 else None

    def _bad_frame(self, cv2, since: float) -> bool:
        """Whether a failed read was one undecodable frame to skip (rather than the end or a lost source): in a
        file, a frame before the last; in a stream, failures that come fast (a lost stream fails by timeout)."""
        if not self.live:
            count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT)
            return 0 < self._capture.get(cv2.CAP_PROP_POS_FRAMES) < count - 1
        return isinstance(self.target, str) and time.monotonic() - since < STREAM_TIMEOUT_S / 2

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def _reduced_decoding(cv2, capture) -> int | None:
    """For an MJPEG file or stream whose frames are larger than :data:`MAX_SIDE`: switch the capture to raw
    packets and return the ``imdecode`` flag that decodes each JPEG at the first of 1/2, 1/4, 1/8 that fits in
    MAX_SIDE (so at least half of it: far more than the model reads), so that a full-size frame is never in
    memory (8000×8000 frames: 75 MB peak instead of 560 MB). None for anything else (other codecs are decoded
    whole, then shrunk)."""
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little")
    side = max(capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if fourcc.upper() not in (b"MJPG", b"JPEG") or side <= MAX_SIDE or not capture.set(cv2.CAP_PROP_FORMAT, -1):
        return None
    for factor, flag in ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4)):
        if side / factor <= MAX_SIDE:
            return flag
    return cv2.IMREAD_REDUCED_COLOR_8  # still larger than MAX_SIDE: shrunk after decoding, like any frame
