"""The camera-classification daemon: capture → classify → smooth → emit, for months without attention.

systemd integration (Type=notify): READY=1 once the model is loaded and the source has been
tried, WATCHDOG=1 from the main loop's own progress (a hung capture stops the pings and
systemd restarts us), STATUS= with fps and label, STOPPING=1 on SIGTERM/SIGINT, exit 0.
A source that fails, stalls or ends is reopened with capped exponential backoff.
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path

from .classifier import Classifier
from .config import Config, parse_bind
from .events import EventWriter, save_snapshot
from .http import Metrics, serve
from .notify import Notifier
from .resources import peak_rss_mb
from .smoothing import Smoother
from .sources import SourceError, open_source

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: Config, classifier: Classifier, events: EventWriter,
                 notifier: Notifier | None = None) -> None:
        self.config, self.classifier, self.events = config, classifier, events
        self.notifier = notifier or Notifier()
        s = config.smoothing
        self.smoother = Smoother(s.window, s.enter, s.stay)
        self.metrics = Metrics(stall_s=max(5.0, 3.0 / config.source.fps))
        self.stopping = False
        self._ready = False
        self._last_ping = 0.0
        self._window = {"frames": 0, "inference_ms": 0.0, "dropped": 0, "since": time.monotonic()}
        self._next_heartbeat = time.monotonic() + config.events.heartbeat_s
        self._source_state = "starting"

    # -- lifecycle -----------------------------------------------------------------------------------------
    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        server = serve(*parse_bind(self.config.http.bind), self.metrics, time.monotonic) \
            if self.config.http.bind else None
        self.events.emit("start", model=str(self.classifier.model), runtime=self.classifier.runtime,
                         source=self.config.source.uri)
        backoff = self.config.source.reconnect_initial_s
        try:
            while not self.stopping:
                delivered, ended, error = self._run_source()
                if self.stopping:
                    break
                if delivered:
                    backoff = self.config.source.reconnect_initial_s
                if ended and delivered and self.config.source.loop:
                    continue  # a looping video file: start again at once
                with self.metrics.lock:
                    self.metrics.reconnects += 1
                self._source_state = f"reconnecting in {backoff:.1f} s"
                self.events.emit("source", state="retry", uri=self.config.source.uri, retry_in_s=backoff,
                                 error=error or ("source ended" if ended else "no frames"))
                log.warning("source %s: %s; retrying in %.1f s", self.config.source.uri, error or "ended", backoff)
                self._notify_ready()
                self._status()
                self._sleep(backoff)
                backoff = min(backoff * 2, self.config.source.reconnect_max_s)
        finally:
            self.notifier.send("STOPPING=1")
            self.events.emit("stop", frames=self.metrics.frames, inferences=self.metrics.inferences)
            if server is not None:
                server.shutdown()
        return 0

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True

    # -- one connection to the source ------------------------------------------------------------------------
    def _run_source(self) -> tuple[bool, bool, str]:
        """Open the source and stream until it ends or fails. Returns (delivered frames, ended, error)."""
        try:
            source = open_source(self.config.source.uri)
            source.open()
        except SourceError as err:
            return False, False, str(err)
        delivered, ended, error = False, False, ""
        self._source_state = "connected"
        self.events.emit("source", state="connected", uri=self.config.source.uri)
        self._notify_ready()
        try:
            period = 1.0 / self.config.source.fps
            next_at = time.monotonic()
            while not self.stopping:
                self._ping()
                t0 = time.monotonic()
                frame = source.read()
                if frame is None:
                    ended = True
                    break
                with self.metrics.lock:
                    self.metrics.frames += 1
                if t0 < next_at:
                    if source.live:
                        self._window["dropped"] += 1
                        with self.metrics.lock:
                            self.metrics.dropped += 1
                        continue
                    self._sleep(next_at - t0)
                next_at = max(next_at + period, time.monotonic())
                self._classify(frame, capture_ms=(time.monotonic() - t0) * 1e3)
                delivered = True
                self._maybe_heartbeat()
        except SourceError as err:
            error = str(err)
        except Exception as err:  # a capture backend failing mid-stream (e.g. cv2.error): reconnect, stay up
            error = f"{type(err).__name__}: {err}"
        finally:
            source.close()
        return delivered, ended, error

    def _classify(self, frame, capture_ms: float) -> None:
        result = self.classifier.classify_frame(frame, self.config.source.uri, k=3, capture_ms=capture_ms)
        now = time.monotonic()
        inference_ms = result.latency_ms["inference"]
        self.metrics.observe(inference_ms, now)
        self._window["frames"] += 1
        self._window["inference_ms"] += inference_ms
        probs = result.scores
        if result.uncertain:  # uncertain frames count as no evidence
            probs = probs * 0
        previous = self.smoother.current
        changed = self.smoother.update(probs)
        label = self._label(self.smoother.current)
        with self.metrics.lock:
            self.metrics.label = label
            self.metrics.latest = {**result.to_dict(), "smoothed_label": label,
                                   "smoothed_confidence": round(self.smoother.confidence, 4)}
        if changed:
            snapshot = None
            if self.config.events.snapshot_dir and self.smoother.current is not None:
                snapshot = str(save_snapshot(Path(self.config.events.snapshot_dir), frame, label,
                                             self.config.events.snapshot_max))
            self.events.emit("label", label=label, index=self.smoother.current,
                             confidence=round(self.smoother.confidence, 4), previous=self._label(previous),
                             snapshot=snapshot)
            self._status()

    def _label(self, index: int | None) -> str:
        return "uncertain" if index is None else self.classifier.labels[index]

    # -- heartbeat, status, watchdog ---------------------------------------------------------------------------
    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        w = self._window
        elapsed = max(now - w["since"], 1e-9)
        self.events.emit("heartbeat", fps=round(w["frames"] / elapsed, 2),
                         mean_inference_ms=round(w["inference_ms"] / max(w["frames"], 1), 2),
                         peak_rss_mb=round(peak_rss_mb(), 1), frames_dropped=w["dropped"],
                         reconnects=self.metrics.reconnects, label=self.metrics.label)
        self._status(fps=w["frames"] / elapsed)
        self._window = {"frames": 0, "inference_ms": 0.0, "dropped": 0, "since": now}
        self._next_heartbeat = now + self.config.events.heartbeat_s

    def _status(self, fps: float | None = None) -> None:
        rate = f"{fps:.1f} fps, " if fps is not None else ""
        self.notifier.send(f"STATUS={rate}label {self.metrics.label}, source {self._source_state}")

    def _notify_ready(self) -> None:
        if not self._ready:
            self._ready = True
            self.notifier.send("READY=1", f"STATUS=model loaded, source {self._source_state}")

    def _ping(self) -> None:
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if interval is not None and now - self._last_ping >= interval:
            self.notifier.send("WATCHDOG=1")
            self._last_ping = now

    def _sleep(self, seconds: float) -> None:
        """Sleep in short steps, pinging the watchdog and returning early on a stop request."""
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            self._ping()
            time.sleep(min(left, 0.1))
