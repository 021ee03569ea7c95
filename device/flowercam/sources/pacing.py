"""At most ``fps`` classifications a second: one pacing rule for ``flowercam watch`` and the daemon."""

from __future__ import annotations

import time


class Pacer:
    """The next classification may start one period after the last one *started* (the time after any wait,
    not before it: measuring from before the wait let a video file run at twice the cap)."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.next_at = float("-inf")

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
