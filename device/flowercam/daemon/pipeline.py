"""One frame's way through the daemon: classify, offer it to the review, smooth, show it, record it in the season's
record and say a label changed; and the counters of the heartbeat window it adds to."""

from __future__ import annotations

import time
from pathlib import Path

from ..model.classifier import Classifier
from ..model.sidecar import sha256_file
from ..season.recorder import Recorder
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
        self.recorder: Recorder | None = None  # the season's record when [sightings] db is set
        self.window = new_window(time.monotonic())

    def swap(self, classifier: Classifier, smoothing: SmoothingConfig, new_smoother: bool, adapter: str) -> None:
        """Run the next frames through ``classifier`` (with the adapter file ``adapter``, if it has one); a fresh
        smoother when its settings or the labels changed (an adapter may add classes)."""
        new_smoother = new_smoother or classifier.labels != self.classifier.labels
        self.classifier = classifier
        if new_smoother:
            self.smoother = Smoother(smoothing.window, smoothing.enter, smoothing.stay)
        self._identify(adapter)

    def record(self, recorder: Recorder, adapter: str) -> None:
        """Record every frame's smoothed label from now on."""
        self.recorder = recorder
        self._identify(adapter)

    def _identify(self, adapter: str) -> None:
        """Tell the recorder which model and adapter (their sha256) answer now."""
        if self.recorder is not None:
            path = Path(adapter) if adapter and self.classifier.adapter is not None else None
            self.recorder.identity(self.classifier.sidecar.sha256,
                                   sha256_file(path) if path is not None and path.is_file() else None)

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
        if self.recorder is not None:
            self.recorder.observe(self.smoother.current, label, self.smoother.confidence, frame, time.time())
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
