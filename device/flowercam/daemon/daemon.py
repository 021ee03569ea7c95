"""The camera-classification daemon: capture → classify → smooth → emit, for months without attention.

systemd integration (Type=notify): READY=1 once the model is loaded and the source has been
tried, WATCHDOG=1 from the main loop's own progress (a hung capture stops the pings and
systemd restarts us), STATUS= with fps and label, STOPPING=1 on SIGTERM/SIGINT, exit 0.
A source that fails, stalls or ends is reopened with capped exponential backoff.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..errors import FlowercamError
from ..model.adapter import Adapter
from ..model.classifier import Classifier
from ..season.recorder import Recorder
from ..sources import SourceError, open_in_background, redact, scrub
from ..sources.pacing import Pacer, paced_frames
from .classifying import classifier_for, reloaded_classifier
from .config import Config, ConfigError, load_config
from .events import EventWriter
from .metrics import Metrics, stall_seconds
from .notify import Notifier
from .outputs import DaemonOutputs
from .pipeline import Pipeline
from .reloading import Reload, plan_reload
from .signals import Signals
from .web.api import Owner
from .web.http import serve
from .web.review import Review, start_review

log = logging.getLogger(__name__)


class Daemon:
    """One daemon: its config and classifier, the source loop, reloads; results go out through ``outputs``."""

    def __init__(self, config: Config, classifier: Classifier, events: EventWriter,
                 notifier: Notifier | None = None, signals: Signals | None = None,
                 config_path: Path | None = None, problem: str | None = None) -> None:
        self.config, self.config_path = config, config_path
        self._reopen = False  # a reload changed the source: reconnect at once
        self.review: Review | None = None  # the review queue when [review] dir is set
        self.notifier = notifier or Notifier()
        self.signals = signals or Signals()
        self.uri = redact(config.source.uri)  # credentials never reach logs, events or the HTTP API
        self.pacer = Pacer(config.source.fps)
        self.metrics = Metrics(stall_s=stall_seconds(config.source.fps))
        self.metrics.set_problem("adapter", problem)  # a broken adapter: no learning, said everywhere
        self.outputs = DaemonOutputs(config, events, self.notifier, self.metrics)
        self.pipeline = Pipeline(classifier, config.smoothing, self.metrics, self.outputs)
        self._learned: Adapter | None = None  # a Learn's adapter, written and waiting to be applied
        self._last_ping = 0.0
        self._next_heartbeat = time.monotonic() + config.events.heartbeat_s
        self.metrics.source_state = "starting"

    # -- lifecycle -----------------------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self.signals.stopping

    @property
    def classifier(self) -> Classifier:
        return self.pipeline.classifier

    def run(self) -> int:
        server, started = None, False
        try:
            if self.stopping:  # stopped while starting up
                return 0
            if self.config.review.dir:
                self.review, token = start_review(self.config)
                self.pipeline.review = self.review
            owner = None if self.review is None else Owner(self.review, lambda: list(self.classifier.labels),
                                                           self._learn, token)
            if self.config.sightings.db:
                self.pipeline.record(Recorder(Path(self.config.sightings.db), self.config.sightings.keep_days,
                                              lambda problem: self.metrics.set_problem("sightings", problem)).start(),
                                     self.config.model.adapter)
            server = serve(self.config.http, self.metrics, time.monotonic, owner, self.config.sightings.db) \
                if self.config.http.bind else None
            self.outputs.start(self.classifier.model.name)
            self.outputs.emit("start", model=str(self.classifier.model), runtime=self.classifier.runtime,
                              source=self.uri, **self.metrics.problem_fields())
            started = True
            self._connect_until_stopped()
        finally:
            self.notifier.send("STOPPING=1")
            mqtt = self.outputs.close_mqtt()
            if started:  # a start that failed (e.g. the port taken) logged no start: no stop either
                self.outputs.emit("stop", frames=self.metrics.frames, inferences=self.metrics.inferences, **mqtt)
            if server is not None:
                server.shutdown()
            if self.pipeline.recorder is not None:  # the open sighting ends with the camera
                self.pipeline.recorder.stop()
        return 0

    def _connect_until_stopped(self) -> None:
        """Stream from the source; reopen it with capped exponential backoff when it fails, stalls or ends."""
        backoff = self.config.source.reconnect_initial_s
        while not self.stopping:
            delivered, ended, error, live = self._run_source()
            error = scrub(error, self.config.source.uri)  # a capture library may quote the URL it was given
            if self.stopping:
                break
            if self._reopen:  # a reload changed the source
                self._reopen = False
                backoff = self.config.source.reconnect_initial_s
                continue
            if delivered:
                backoff = self.config.source.reconnect_initial_s
            if ended and delivered and not live:  # a video file played to its end
                if self.config.source.loop:
                    continue  # loop = true: start again at once
                self._ended()  # loop = false: it ended, once, and stays ended (until a reload names another)
                if self.stopping:
                    break
                self._reopen = False
                continue
            self._retrying(backoff, error or ("source ended" if ended else "no frames"))
            self._sleep(backoff)
            backoff = min(backoff * 2, self.config.source.reconnect_max_s)

    def _retrying(self, backoff: float, error: str) -> None:
        self.metrics.add(reconnects=1)
        self.metrics.source_down(True)
        self.metrics.source_state = f"reconnecting in {backoff:.1f} s"
        self.outputs.emit("source", state="retry", uri=self.uri, retry_in_s=backoff, error=error)
        log.warning("source %s: %s; retrying in %.1f s", self.uri, error, backoff)
        self.outputs.ready()
        self.outputs.status()

    # -- reload (SIGHUP, systemctl reload) -----------------------------------------------------------------------
    def _maybe_reload(self) -> None:
        if self.signals.reload:
            self.signals.reload = False
            self.reload()
        if self._learned is not None:
            learned, self._learned = self._learned, None
            self._apply_learned(learned)

    def reload(self) -> bool:
        """Re-read the config and the model it names; on success swap them in between two frames, else go on with
        the old ones and say why in one line. systemd sees RELOADING=1 ... READY=1 either way."""
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            if self.config_path is None:
                raise ConfigError("no config file to reload")
            config = load_config(self.config_path)
            classifier, adapter_problem = reloaded_classifier(config, self.classifier)
        except FlowercamError as err:
            log.error("reload failed, still running the previous config and model: %s", err)
            self.outputs.emit("reload", ok=False, error=str(err))
            self.notifier.send("READY=1", f"STATUS=reload failed ({err}); previous config and model kept")
            return False
        plan = plan_reload(self.config, config)
        self.config = plan.config
        self._apply(plan, classifier)
        self.metrics.set_problem("adapter", adapter_problem)
        if plan.restart_needed_for:
            log.warning("reload: %s take effect at the next restart", ", ".join(plan.restart_needed_for))
        self.outputs.emit("reload", ok=True, model=str(classifier.model), source=self.uri,
                          applied=list(plan.applied), restart_needed_for=list(plan.restart_needed_for))
        self.notifier.send("READY=1")
        self.outputs.status()
        return True

    def _apply(self, plan: Reload, classifier: Classifier) -> None:
        """Swap in what the reload applied: the source, pacing and stall limit, smoothing, the review's pace and
        quota, the outputs (snapshots, heartbeats, MQTT)."""
        config = plan.config
        self.uri = redact(config.source.uri)
        self._reopen = "source.uri" in plan.applied or "source.every_frame" in plan.applied  # paced at opening
        if "source.fps" in plan.applied:
            self.pacer.set_fps(config.source.fps)
            self.metrics.stall_s = stall_seconds(config.source.fps)  # /healthz's limit follows the new pace
        if "events.heartbeat_s" in plan.applied:  # the new pace from now, not after the old interval
            self._next_heartbeat = min(self._next_heartbeat, time.monotonic() + config.events.heartbeat_s)
        self.pipeline.swap(classifier, config.smoothing, plan.changed("smoothing"), config.model.adapter)
        self.metrics.set_problem("adapter", None)  # the reloaded adapter (or none) is in force
        if self.review is not None and plan.changed("review"):
            self.review.pace(config.review)
        self.outputs.apply(config, self.classifier.model.name)

    def _learn(self) -> bool:
        """Learn from the review's garden (the owner pressed the button); the adapter is applied between frames."""
        def done(fitted: Adapter) -> None:
            self._learned = fitted

        return self.review.learner.start(lambda: classifier_for(self.config, with_adapter=False),
                                         Path(self.config.model.adapter), done)

    def _apply_learned(self, fitted: Adapter) -> None:
        """Swap in the running config's classifier with the adapter a Learn just wrote, nothing else (a config
        file edited meanwhile waits for its own reload); the Learn ends "done" only once it is answering."""
        try:
            classifier = classifier_for(self.config)
        except FlowercamError as err:
            self.review.learner.finished(fitted, f"the new adapter was not applied: {err}")
            self.outputs.emit("learn", ok=False, error=self.review.learner.state["error"])
            return
        self.pipeline.swap(classifier, self.config.smoothing, False, self.config.model.adapter)
        self.metrics.set_problem("adapter", None)
        self.outputs.emit("learn", ok=True, adapter=self.config.model.adapter, labels=len(classifier.labels))
        self.review.learner.finished(fitted)
        self.outputs.status()

    def _ended(self) -> None:
        """A video file ended with loop = false: say so once, then idle (watchdog kept) until stopped."""
        self.metrics.source_state = "ended"
        self.outputs.emit("source", state="ended", uri=self.uri)
        log.info("source %s ended (loop = false)", self.uri)
        self.outputs.ready()
        self.outputs.status()
        while not self.stopping and not self._reopen:
            self._sleep(1.0)

    # -- one connection to the source ------------------------------------------------------------------------
    def _run_source(self) -> tuple[bool, bool, str, bool]:
        """Open the source and stream until it ends or fails.

        Returns (delivered frames, ended, error, live). Only what the source itself raises ends a connection;
        a failure while classifying or writing events is the daemon's own, not a camera fault.
        """
        source = open_in_background(self.config.source.uri, self._ping, lambda: self.stopping)
        if isinstance(source, str):
            return False, False, source, True
        delivered, ended, error, seen_bad = False, False, "", 0
        self.metrics.source_state = "connected"
        self.metrics.source_down(False)
        self.outputs.emit("source", state="connected", uri=self.uri)
        self.outputs.ready()
        frames = paced_frames(source, self.pacer, self._sleep,  # a file's frames when due (the sleep pings)
                              every_frame=self.config.source.every_frame)
        try:
            while not self.stopping and not self._reopen:
                self._ping()
                self._maybe_reload()
                try:
                    paced = next(frames, None)
                except SourceError as err:
                    error = str(err)
                    break
                except Exception as err:  # a capture backend failing mid-stream (e.g. cv2.error): reconnect
                    error = f"{type(err).__name__}: {err}"
                    break
                if source.bad_frames > seen_bad:  # undecodable frames skipped: counted, not a reconnect
                    self.metrics.add(bad_frames=source.bad_frames - seen_bad)
                    self.pipeline.window["bad"] += source.bad_frames - seen_bad
                    seen_bad = source.bad_frames
                if paced is None:
                    ended = True
                    break
                self.metrics.add(frames=1)
                if paced.image is None:  # a camera: frames in between keep it fresh, and are dropped
                    self.pipeline.window["dropped"] += 1
                    self.metrics.add(dropped=1)
                    continue
                self.pipeline.classify(paced.image, self.uri, paced.capture_ms)
                delivered = True
                self._maybe_heartbeat()
        finally:
            frames.close()
            source.close()
        return delivered, ended, error, source.live

    # -- heartbeat, status, watchdog ---------------------------------------------------------------------------
    def _maybe_heartbeat(self) -> None:
        """A heartbeat every ``heartbeat_s``, also while the source is down (then with the outage, no label)."""
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self.pipeline.heartbeat(now)
        self._next_heartbeat = now + self.config.events.heartbeat_s

    def _ping(self) -> None:
        """WATCHDOG=1 every half watchdog interval, from READY on (start-up is TimeoutStartSec's)."""
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if self.outputs.is_ready and interval is not None and now - self._last_ping >= interval:
            self.notifier.send("WATCHDOG=1")
            self._last_ping = now

    def _sleep(self, seconds: float) -> None:
        """Sleep in short steps, pinging the watchdog (and, during an outage, the heartbeat) and returning early
        on a stop request."""
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            self._ping()
            self._maybe_reload()
            if self.metrics.outage_since is not None:
                self._maybe_heartbeat()
            time.sleep(min(left, 0.1))
