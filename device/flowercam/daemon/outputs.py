"""Where the daemon's results go: the events (JSON Lines on stdout and the events file), systemd's notify socket,
MQTT, the snapshots folder and the metrics the HTTP endpoints read. One small interface for the daemon: emit an
event, say a label changed, beat the heart, set the status, and apply a new config."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from ..model.resources import peak_rss_mb
from .config import Config
from .events import EventWriter, save_snapshot
from .metrics import Metrics
from .notify import Notifier

log = logging.getLogger(__name__)


def new_window(now: float) -> dict:
    """The counters of one heartbeat window."""
    return {"frames": 0, "inference_ms": 0.0, "dropped": 0, "bad": 0, "since": now}


class DaemonOutputs:
    def __init__(self, config: Config, events: EventWriter, notifier: Notifier, metrics: Metrics) -> None:
        self.config, self.events, self.notifier, self.metrics = config, events, notifier, metrics
        self.mqtt = None  # an MqttPublisher when [mqtt] host is set
        self.model_name = ""
        self._ready = False

    def start(self, model_name: str) -> None:
        """Connect what needs connecting (MQTT)."""
        self.model_name = model_name
        self._connect_mqtt()

    def _connect_mqtt(self) -> None:
        if self.config.mqtt.host:
            from .mqtt import MqttPublisher

            self.mqtt = MqttPublisher(self.config.mqtt, self.model_name)

    def apply(self, config: Config, model_name: str) -> None:
        """Run with a reloaded config: the snapshot and heartbeat settings from the next use on, and a new MQTT
        connection if ``[mqtt]`` or the model changed (the old one says offline first)."""
        reconnect = config.mqtt != self.config.mqtt or model_name != self.model_name
        self.config, self.model_name = config, model_name
        if reconnect:
            self.close_mqtt()
            self._connect_mqtt()

    def close_mqtt(self) -> dict:
        """Disconnect from the broker; the message counts (none without MQTT)."""
        mqtt, self.mqtt = self.mqtt, None
        return {} if mqtt is None else {"mqtt": mqtt.close()}

    def emit(self, event: str, **fields) -> None:
        self.events.emit(event, **fields)

    def label_changed(self, label: str, index: int | None, confidence: float, previous: str, frame) -> None:
        """A new smoothed label: the thumbnail, MQTT's state and snapshot, the snapshot file and the event."""
        self.metrics.remember(label, confidence, frame)
        if self.mqtt is not None:
            self.publish_state(confidence, index is None)
            self.mqtt.snapshot(self.metrics.snapshot() or b"")
        snapshot, problem = None, {}
        events = self.config.events
        if events.snapshot_dir and index is not None:
            try:
                snapshot = str(save_snapshot(Path(events.snapshot_dir), frame, label, events.snapshot_max))
            except OSError as err:  # a full or read-only disk: the label event still goes out
                problem = {"snapshot_error": f"{type(err).__name__}: {err.strerror or err}"}
                log.warning("snapshot not saved: %s", problem["snapshot_error"])
        self.emit("label", label=label, index=index, confidence=round(confidence, 4), previous=previous,
                  snapshot=snapshot, **problem)
        self.status()

    def heartbeat(self, window: dict, now: float, confidence: float, uncertain: bool) -> None:
        """The figures of one heartbeat window (also while the source is down: then the outage, no label)."""
        elapsed = max(now - window["since"], 1e-9)
        fps = window["frames"] / elapsed
        outage = self.metrics.outage_seconds(now)
        self.emit("heartbeat", fps=round(fps, 2),
                  mean_inference_ms=round(window["inference_ms"] / max(window["frames"], 1), 2),
                  peak_rss_mb=round(peak_rss_mb(), 1), frames_dropped=window["dropped"], frames_bad=window["bad"],
                  reconnects=self.metrics.reconnects, source=self.metrics.source_state, **self.metrics.problem_fields(),
                  **({"outage_s": round(outage, 1), "label": None} if outage is not None
                     else {"label": self.metrics.label}))
        self.status(fps=fps)
        if self.mqtt is not None:
            self.publish_state(confidence, uncertain, fps=fps)
            self.publish_season()

    def publish_season(self) -> None:
        """The season's record on ``…/season`` (retained), with [sightings] on and something recorded."""
        if not self.config.sightings.db:
            return
        import contextlib

        from ..season.store import SightingsError, read_only, this_season

        try:
            with contextlib.closing(read_only(Path(self.config.sightings.db))) as db:
                self.mqtt.season(this_season(db))
        except (SightingsError, sqlite3.Error) as err:  # nothing recorded yet, or unreadable: the next beat
            log.debug("season not published: %s", err)

    def publish_state(self, confidence: float, uncertain: bool, fps: float | None = None) -> None:
        outage = self.metrics.outage_seconds(time.monotonic())
        self.mqtt.state(label=None if outage is not None else self.metrics.label,
                        confidence=round(confidence, 4), uncertain=uncertain,
                        since=self.metrics.since, fps=round(self.metrics.fps() if fps is None else fps, 2),
                        source=self.metrics.source_state, outage_s=None if outage is None else round(outage, 1))

    def status(self, fps: float | None = None) -> None:
        """systemd's one-line STATUS=: fps and label, or how long the source has been down."""
        outage = self.metrics.outage_seconds(time.monotonic())
        if outage is not None:  # no stale label while nothing is seen
            self.notifier.send(f"STATUS=source down for {outage:.0f} s, {self.metrics.source_state}")
            return
        rate = f"{fps:.1f} fps, " if fps is not None else ""
        self.notifier.send(f"STATUS={rate}label {self.metrics.label}, source {self.metrics.source_state}")

    def ready(self) -> None:
        """READY=1, once: the model is loaded and the source has been tried."""
        if not self._ready:
            self._ready = True
            self.notifier.send("READY=1", f"STATUS=model loaded, source {self.metrics.source_state}")

    @property
    def is_ready(self) -> bool:
        return self._ready
