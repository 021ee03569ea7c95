"""The loop behind ``flowercam watch``: capture, classify at most ``fps`` times a second, print."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from .classifier import Classifier
from .pacing import Pacer
from .sources import FrameSource


def watch_loop(classifier: Classifier, source: FrameSource, fps: float, max_frames: int | None, as_json: bool,
               echo: Callable[[str], None]) -> int:
    """Classify frames until the source ends or ``max_frames``; returns how many were classified.

    A camera is read continuously (frames between classifications are dropped, so the one classified is fresh);
    a video file is read frame by frame, waiting for each to be due. The wait is reported as ``wait_ms``,
    apart from the capture (``latency_ms.decode``).
    """
    pacer, count, started = Pacer(fps), 0, time.perf_counter()
    while max_frames is None or count < max_frames:
        t0 = time.perf_counter()
        frame = source.read()
        capture_ms = (time.perf_counter() - t0) * 1e3
        if frame is None:
            break
        wait = pacer.wait_s()
        if wait and source.live:
            continue
        time.sleep(wait)
        pacer.start()
        result = classifier.classify_frame(frame, source.name, k=1, capture_ms=capture_ms)
        count += 1
        rate = count / max(time.perf_counter() - started, 1e-9)
        if as_json:
            echo(json.dumps({**result.to_dict(), "wait_ms": round(wait * 1e3, 3), "fps": round(rate, 2)}))
        else:
            best = result.top_k[0]
            label = f"uncertain (best guess: {best.label})" if result.uncertain else best.label
            echo(f"{label:30s} {best.score:6.1%}  {rate:5.1f} fps  inference {result.latency_ms['inference']:6.1f} ms"
                 f"  RSS {result.peak_rss_mb:.0f} MB")
    return count
