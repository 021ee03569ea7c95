"""The loop behind ``flowercam watch``: capture, classify at most ``fps`` times a second, print."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ..model.classifier import Classifier
from ..sources import FrameSource
from ..sources.pacing import Pacer, paced_frames

LABEL_COLUMN = 30  # characters of the label column; a longer answer is cut with "…"


def watch_loop(classifier: Classifier, source: FrameSource, fps: float, max_frames: int | None, as_json: bool,
               echo: Callable[[str], None], every_frame: bool = False) -> tuple[int, bool]:
    """Classify frames until the source ends or ``max_frames``; returns (how many were classified, whether the
    source ended). The rate shown is over the classifications so far (none on the first line). Frames come
    paced as the daemon's (:func:`~flowercam.sources.pacing.paced_frames`); the wait is reported as
    ``wait_ms``, apart from the capture (``latency_ms.decode``).
    """
    count, first, frames = 0, 0.0, paced_frames(source, Pacer(fps), every_frame=every_frame)
    while max_frames is None or count < max_frames:
        paced = next(frames, None)
        if paced is None:
            return count, True
        if paced.image is None:
            continue
        frame, capture_ms, wait = paced.image, paced.capture_ms, paced.wait_s
        first = first or time.perf_counter()
        result = classifier.classify_frame(frame, source.name, k=3, capture_ms=capture_ms)  # as classify's
        count += 1
        rate = (count - 1) / (time.perf_counter() - first) if count > 1 else None
        if as_json:
            echo(json.dumps({**result.to_dict(), "wait_ms": round(wait * 1e3, 3),
                             "fps": None if rate is None else round(rate, 2)}))
        else:
            best = result.top_k[0]
            label = f"uncertain ({best.label}?)" if result.uncertain else best.label
            label = label if len(label) <= LABEL_COLUMN else label[:LABEL_COLUMN - 1] + "…"  # the columns hold
            shown = "    – fps" if rate is None else f"{rate:5.1f} fps"
            inference = result.latency_ms["inference"]
            echo(f"{label:{LABEL_COLUMN}s} {best.score:6.1%}  {shown}  inference {inference:6.1f} ms"
                 f"  RSS {result.peak_rss_mb:.0f} MB")
    return count, False
