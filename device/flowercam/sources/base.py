"""The interface every camera source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import FlowercamError


class SourceError(FlowercamError):
    """A source that cannot be opened or has stopped delivering frames; one-line message."""


class FrameSource(ABC):
    """A camera or video: ``open()``, then ``read()`` RGB frames, then ``close()``."""

    name: str = "source"
    live: bool = True  # a camera or stream (frames keep coming) rather than a file read at our pace
    bad_frames: int = 0  # undecodable frames skipped so far

    @abstractmethod
    def open(self) -> None:
        """Start the source (raises SourceError)."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next frame as (H, W, 3) uint8 RGB, or None when the source has ended."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def video_time_s(self) -> float | None:
        """Where the frame just read lies in a video file's own time (seconds from its start); None for a camera,
        a stream, or a file that does not say."""
        return None

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
