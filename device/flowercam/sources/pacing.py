"""At most ``fps`` classifications a second: one pacing rule and one frame loop for ``flowercam watch`` and the
daemon."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .base import FrameSource


class Pacer:
    """The next classification may start one period after the last one *started* (the time after any wait,
    not before it: measuring from before the wait let a video file run at twice the cap)."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next_at = float("-inf")

    def set_fps(self, fps: float) -> None:
        """A new cap from the next classification on (a reload's ``source.fps``)."""
        self.period = 1.0 / fps

    def wait_s(self) -> float:
        """Seconds until the next classification is due (0 when it is)."""
        return max(0.0, self.next_at - time.monotonic())

    def start(self) -> None:
        """A classification starts now."""
        self.next_at = time.monotonic() + self.period

    def admit(self, live: bool) -> float | None:
        """The drop-or-wait rule for the frame just read: None to drop it (a live camera, not yet due: the frame
        classified stays fresh), else the seconds to wait before classifying it (a file: each frame when due)."""
        wait = self.wait_s()
        return None if wait and live else wait


@dataclass(frozen=True)
class Paced:
    """A frame read from a source: ``image`` None for a camera frame dropped between classifications."""

    image: object
    capture_ms: float
    wait_s: float = 0.0


def paced_frames(source: FrameSource, pacer: Pacer, sleep: Callable[[float], None] = time.sleep,
                 every_frame: bool = False) -> Iterator[Paced]:
    """Read ``source`` until it ends, pacing what is classified: a camera is read continuously (frames between
    classifications come as dropped, so the one classified is fresh); a video file plays at its own speed, each
    frame read when its time comes and kept when one ``pacer`` period of video time has passed since the last one
    kept (a 2 fps video gives 2 frames a second, a 25 fps one 5 at a 5 fps cap, the others dropped as a camera's);
    with ``every_frame``, or a file that gives no times, a file's every frame is classified in turn, each after
    ``sleep`` until the pacer allows. What ``source.read`` raises is the caller's."""
    origin = last = kept = None  # the clock time of the video's 0 s; the last frame's video time; the last kept
    while True:
        t0 = time.monotonic()
        frame = source.read()
        capture_ms = (time.monotonic() - t0) * 1e3
        if frame is None:
            return
        at = None if source.live or every_frame else source.video_time_s()
        if at is None:
            wait = pacer.admit(source.live)
            if wait is None:
                yield Paced(None, capture_ms)
                continue
            sleep(wait)
            pacer.start()
            yield Paced(frame, capture_ms, wait)
            continue
        if origin is None or last is None or at < last:  # the first frame, or the video started again
            origin, kept = time.monotonic() - at, None
        last = at
        sleep(max(0.0, origin + at - time.monotonic()))
        if kept is not None and at - kept < pacer.period - 1e-3:  # video time, so a 10 fps file at 10 keeps all
            yield Paced(None, capture_ms)
            continue
        kept = at
        pacer.start()
        yield Paced(frame, capture_ms)
