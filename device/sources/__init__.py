"""Camera sources behind one small interface, chosen by a URI.

``picamera2`` (the Pi camera), ``opencv:N`` (USB camera N), or a video file / stream URL
read through OpenCV. Each source is a context manager yielding RGB frames.
"""

from __future__ import annotations

from .base import FrameSource, SourceError


def open_source(uri: str) -> FrameSource:
    """The source for ``uri``; imports its backend only when chosen."""
    if uri == "picamera2":
        from .picamera import PiCameraSource

        return PiCameraSource()
    from .opencv import OpenCVSource

    if uri.startswith("opencv:"):
        index = uri.split(":", 1)[1]
        if not index.isdigit():
            raise SourceError(f"bad source {uri!r}: expected opencv:N with a camera number N")
        return OpenCVSource(int(index))
    return OpenCVSource(uri)


__all__ = ["FrameSource", "SourceError", "open_source"]
