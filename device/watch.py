"""The loop behind ``flowercam watch``: capture, classify at most ``fps`` times a second, print."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from .classifier import Classifier
from .sources import FrameSource


def watch_loop(classifier: Classifier, source: FrameSource, fps: float, max_frames: int | None, as_json: bool,
               echo: Callable[[str], None]) -> int:
    """Classify frames until the source ends or ``max_frames``; returns how many were classified."""
    period, count, started = 1.0 / fps, 0, time.perf_counter()
    next_at = started
    while max_frames is None or count < max_frames:
        t0 = time.perf_counter()
        frame = source.read()
        if frame is None:
            break
        if t0 < next_at:
            if source.live:  # a camera: frames in between are read (kept fresh) but not classified
                continue
            time.sleep(next_at - t0)  # a file: every frame in turn, at most fps a second
        next_at = t0 + period
        result = classifier.classify_frame(frame, source.name, k=1, capture_ms=(time.perf_counter() - t0) * 1e3)
        count += 1
        rate = count / max(time.perf_counter() - started, 1e-9)
        if as_json:
            echo(json.dumps({**result.to_dict(), "fps": round(rate, 2)}))
        else:
            best = result.top_k[0]
            label = "uncertain" if result.uncertain else best.label
            echo(f"{label:30s} {best.score:6.1%}  {rate:5.1f} fps  inference {result.latency_ms['inference']:6.1f} ms"
                 f"  RSS {result.peak_rss_mb:.0f} MB")
    return count
