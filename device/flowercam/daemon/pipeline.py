"""One frame's way through the daemon: classify, offer it to the review, smooth, show it and say a label changed;
and the counters of the heartbeat window it adds to."""

from __future__ import annotations

import time

from ..model.classifier import Classifier
from .config import SmoothingConfig
from .metrics import Metrics
from .outputs import DaemonOutputs, new_window
from .smoothing import Smoother
from .web.review import Review


class Pipeline:
    """The classifier and the smoother the daemon runs each frame through (both swapped on reload or learn)."""

    def __init__(self, classifier: Classifier, smoothing: SmoothingConfig, metrics: Metrics,
                 outputs: DaemonOutputs) -> None:
        self.classifier, self.metrics, self.outputs = classifier, metrics, outputs
        self.smoother = Smoother(smoothing.window, smoothing.enter, smoothing.stay)
        self.review: Review | None = None  # the review queue when [review] dir is set
        self.window = new_window(time.monotonic())

    def swap(self, classifier: Classifier, smoothing: SmoothingConfig, new_smoother: bool) -> None:
        """Run the next frames through ``classifier``; a fresh smoother when its settings or the labels changed
        (an adapter may add classes)."""
        new_smoother = new_smoother or classifier.labels != self.classifier.labels
        self.classifier = classifier
        if new_smoother:
            self.smoother = Smoother(smoothing.window, smoothing.enter, smoothing.stay)

    def classify(self, frame, uri: str, capture_ms: float) -> None:
        result = self.classifier.classify_frame(frame, uri, k=3, capture_ms=capture_ms)
        now = time.monotonic()
        if self.review is not None:
            self.review.offer(frame, result, now)
        inference_ms = result.latency_ms["inference"]
        self.metrics.observe(inference_ms, now)
        self.window["frames"] += 1
        self.window["inference_ms"] += inference_ms
        probs = result.scores
        if result.uncertain:  # uncertain frames count as no evidence
            probs = probs * 0
        previous = self.smoother.current
        changed = self.smoother.update(probs)
        label = self.label(self.smoother.current)
        self.metrics.show(label, frame, {**result.to_dict(), "smoothed_label": label,
                                         "smoothed_confidence": round(self.smoother.confidence, 4)}, changed)
        if changed:
            self.outputs.label_changed(label, self.smoother.current, self.smoother.confidence,
                                       self.label(previous), frame)

    def label(self, index: int | None) -> str:
        return "uncertain" if index is None else self.classifier.labels[index]

    def heartbeat(self, now: float) -> None:
        """Send the window's heartbeat and start a new window."""
        self.outputs.heartbeat(self.window, now, self.smoother.confidence, self.smoother.current is None)
        self.window = new_window(now)
