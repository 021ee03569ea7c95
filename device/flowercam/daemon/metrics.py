"""What the daemon counts and shows: frames, inferences, latencies, the latest label and its frame, the last
label changes; read by ``/metrics`` (Prometheus text), ``/latest`` and the status page."""

from __future__ import annotations

import io
import threading
import time
from collections import deque

LATENCY_BUCKETS_MS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000)
HISTORY = 8  # label changes shown on the status page
THUMB_SIDE = 160  # px, the thumbnails of those changes


def _jpeg(frame, side: int | None) -> bytes:
    """An RGB frame as JPEG, optionally shrunk to ``side`` px on its long side."""
    from PIL import Image

    image = Image.fromarray(frame, "RGB")
    if side:
        image.thumbnail((side, side))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class Metrics:
    """Counters shared between the main loop and the HTTP thread (guarded by a lock)."""

    def __init__(self, stall_s: float) -> None:
        self.lock = threading.Lock()
        self.stall_s = stall_s
        self.frames = self.inferences = self.reconnects = self.dropped = self.bad_frames = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.latency_sum_ms = 0.0
        self.last_frame_at = 0.0
        self.label = "uncertain"
        self.latest: dict = {}
        self.outage_since: float | None = None  # monotonic time the source went down; None while it is up
        self.source_state = "starting"
        self.problems: dict[str, str] = {}  # what a broken optional file cost (see set_problem)
        self.frame = None  # the last frame classified (RGB array) and its number
        self.frame_id = 0
        self.since: float | None = None  # wall time the smoothed label last changed
        self.history: deque[dict] = deque(maxlen=HISTORY)  # the last label changes, newest first, with thumbnails
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._inference_times: deque[float] = deque(maxlen=30)

    def add(self, **counts: int) -> None:
        """Add to counters (``frames``, ``dropped``, ``bad_frames``, ``reconnects``), under the lock."""
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def source_down(self, down: bool) -> None:
        """The source went down (the outage starts now, unless it already had) or came back."""
        with self.lock:
            if not down:
                self.outage_since = None
            elif self.outage_since is None:
                self.outage_since = time.monotonic()

    def show(self, label: str, frame, latest: dict, changed: bool) -> None:
        """The newest classified frame, its smoothed label and its answer (for /latest and the page)."""
        with self.lock:
            self.label = label
            self.frame, self.frame_id = frame, self.frame_id + 1
            if changed or self.since is None:
                self.since = time.time()
            self.latest = latest

    def remember(self, label: str, confidence: float, frame) -> None:
        """A label change, with a thumbnail of the frame it was confirmed on."""
        entry = {"time": round(time.time(), 3), "label": label, "confidence": round(float(confidence), 4),
                 "thumb": _jpeg(frame, THUMB_SIDE)}
        with self.lock:
            self.history.appendleft(entry)

    def snapshot(self) -> bytes | None:
        """The last classified frame as JPEG (encoded once per frame, on demand)."""
        with self.lock:
            frame, frame_id = self.frame, self.frame_id
        if frame is None:
            return None
        if self._jpeg[0] != frame_id:
            self._jpeg = (frame_id, _jpeg(frame, None))
        return self._jpeg[1]

    def status(self, now: float) -> dict:
        """What the status page shows (``/latest``): the last result, the smoothed label and since when, rates,
        memory, the source's state, and the last label changes."""
        fps = self.fps()
        with self.lock:
            outage = self.outage_seconds(now)
            return {**self.latest, "frame_id": self.frame_id, "since": self.since, "fps": round(fps, 2),
                    "source": self.source_state, "outage_s": None if outage is None else round(outage, 1),
                    "inferences": self.inferences, "reconnects": self.reconnects, **self.problem_fields(),
                    "history": [{k: v for k, v in h.items() if k != "thumb"} | {"thumb": f"/history/{i}.jpg"}
                                for i, h in enumerate(self.history)]}

    def set_problem(self, feature: str, problem: str | None) -> None:
        """Say what a broken optional file costs (None: the feature works again). The dict is replaced, never
        changed in place, so the HTTP thread always reads a whole one."""
        self.problems = {k: v for k, v in self.problems.items() if k != feature} | (
            {} if problem is None else {feature: problem})

    def problem_fields(self) -> dict:
        """``{"problems": [...]}`` while something optional is off (for events, /latest and the page), else {}."""
        return {"problems": list(self.problems.values())} if self.problems else {}

    def health(self, now: float) -> tuple[bool, str]:
        """/healthz: whether frames flow, and the one-line detail (with what is off, while frames flow)."""
        with self.lock:
            flowing = bool(self.last_frame_at) and now - self.last_frame_at <= self.stall_s
        if not flowing:
            return False, "no frames"
        return True, "ok" + "".join(f"; {p}" for p in self.problems.values())

    def fps(self) -> float:
        """Classifications a second over the last few (0 before two)."""
        with self.lock:
            times = list(self._inference_times)
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def outage_seconds(self, now: float) -> float | None:
        """How long the source has been down, or None while it is up."""
        since = self.outage_since
        return None if since is None else now - since

    def observe(self, inference_ms: float, now: float) -> None:
        with self.lock:
            self._inference_times.append(now)
            self.inferences += 1
            self.latency_sum_ms += inference_ms
            index = next((i for i, b in enumerate(LATENCY_BUCKETS_MS) if inference_ms <= b), len(LATENCY_BUCKETS_MS))
            self.latency_counts[index] += 1
            self.last_frame_at = now

    def prometheus(self, now: float) -> str:
        with self.lock:
            outage = self.outage_seconds(now)
            lines = [
                "# TYPE flowercam_source_up gauge", f"flowercam_source_up {0 if outage is not None else 1}",
                "# TYPE flowercam_source_outage_seconds gauge", f"flowercam_source_outage_seconds {outage or 0:.1f}",
                "# TYPE flowercam_frames_total counter", f"flowercam_frames_total {self.frames}",
                "# TYPE flowercam_frames_dropped_total counter", f"flowercam_frames_dropped_total {self.dropped}",
                "# TYPE flowercam_frames_bad_total counter", f"flowercam_frames_bad_total {self.bad_frames}",
                "# TYPE flowercam_inferences_total counter", f"flowercam_inferences_total {self.inferences}",
                "# TYPE flowercam_source_reconnects_total counter",
                f"flowercam_source_reconnects_total {self.reconnects}",
                "# TYPE flowercam_inference_latency_ms histogram",
            ]
            cumulative = 0
            for bucket, count in zip(LATENCY_BUCKETS_MS, self.latency_counts):
                cumulative += count
                lines.append(f'flowercam_inference_latency_ms_bucket{{le="{bucket}"}} {cumulative}')
            lines += [f'flowercam_inference_latency_ms_bucket{{le="+Inf"}} {self.inferences}',
                      f"flowercam_inference_latency_ms_sum {self.latency_sum_ms:.3f}",
                      f"flowercam_inference_latency_ms_count {self.inferences}",
                      "# TYPE flowercam_current_label gauge"]
            if outage is None:  # no stale label while the source is down
                lines.append(f'flowercam_current_label{{label="{label_value(self.label)}"}} 1')
        return "\n".join(lines) + "\n"


def label_value(text: str) -> str:
    """A Prometheus label value: backslash, double quote and line feed escaped (the exposition format's rule)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def stall_seconds(fps: float) -> float:
    """How long without a frame before /healthz says the source stalled: three frames' time, at least 5 s."""
    return max(5.0, 3.0 / fps)
