"""The camera-classification daemon: capture → classify → smooth → emit, for months without attention.

systemd integration (Type=notify): READY=1 once the model is loaded and the source has been
tried, WATCHDOG=1 from the main loop's own progress (a hung capture stops the pings and
systemd restarts us), STATUS= with fps and label, STOPPING=1 on SIGTERM/SIGINT, exit 0.
A source that fails, stalls or ends is reopened with capped exponential backoff.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from .classifier import Classifier
from .config import Config, ConfigError, load_config, parse_bind
from .errors import FlowercamError
from .events import EventWriter, save_snapshot
from .http import Metrics, Owner, serve
from .notify import Notifier
from .pacing import Pacer
from .resources import peak_rss_mb
from .review import Review, read_token
from .smoothing import Smoother
from .sources import SourceError, open_source, redact, scrub

log = logging.getLogger(__name__)


def classifier_for(config: Config, with_adapter: bool = True) -> Classifier:
    """The classifier a config names, with its adapter (raises ModelError, AdapterError or RuntimeMissing);
    built anew on reload, so a new adapter is applied on SIGHUP without a restart. With ``[review]`` on, an
    adapter file that does not exist yet is none: the first learn from the review writes it."""
    threshold = config.model.uncertain_below if config.model.uncertain_below >= 0 else None
    adapter = Path(config.model.adapter) if config.model.adapter and with_adapter else None
    if adapter is not None and config.review.dir and not adapter.exists():
        adapter = None
    return Classifier(Path(config.model.path) if config.model.path else None, config.model.threads,
                      config.model.edgetpu, threshold, config.model.crops or None, adapter)


def start_review(config: Config) -> Review:
    """The review queue of ``[review]``, its writer started and its token read (or made)."""
    r = config.review
    token_file = Path(r.token_file) if r.token_file else Path(r.dir) / "token"
    review = Review(Path(r.dir), r.every_s, r.confident_every, int(r.quota_mb * (1 << 20)), read_token(token_file))
    log.info("review: frames in %s, labelled photos in %s; the labelling token is in %s: %s", review.pending,
             review.garden, token_file, review.token)
    return review.start()


def _new_window(now: float) -> dict:
    """The counters of one heartbeat interval."""
    return {"frames": 0, "inference_ms": 0.0, "dropped": 0, "bad": 0, "since": now}


class Signals:
    """SIGTERM/SIGINT request a stop; SIGHUP requests a reload of the config and model (``systemctl reload``).
    Installed first thing, before the model loads, so a stop in the first moments still ends with STOPPING=1
    and a ``stop`` event (and a SIGHUP then is never a death, which systemd would count as a clean exit)."""

    def __init__(self) -> None:
        self.stopping = False
        self.reload = False

    def install(self) -> Signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        signal.signal(signal.SIGHUP, self._hangup)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file past its size limit: a failed write, not a death
        return self

    def _stop(self, signum, _frame) -> None:
        self.stopping = True

    def _hangup(self, signum, _frame) -> None:
        self.reload = True


class Daemon:
    def __init__(self, config: Config, classifier: Classifier, events: EventWriter,
                 notifier: Notifier | None = None, signals: Signals | None = None,
                 config_path: Path | None = None) -> None:
        self.config, self.classifier, self.events = config, classifier, events
        self.config_path = config_path
        self._reopen = False  # a reload changed the source: reconnect at once
        self.mqtt = None  # an MqttPublisher when [mqtt] host is set
        self.review: Review | None = None  # the review queue when [review] dir is set
        self.notifier = notifier or Notifier()
        self.signals = signals or Signals()
        self.uri = redact(config.source.uri)  # credentials never reach logs, events or the HTTP API
        self.pacer = Pacer(config.source.fps)
        s = config.smoothing
        self.smoother = Smoother(s.window, s.enter, s.stay)
        self.metrics = Metrics(stall_s=max(5.0, 3.0 / config.source.fps))
        self._ready = False
        self._last_ping = 0.0
        self._window = _new_window(time.monotonic())
        self._next_heartbeat = time.monotonic() + config.events.heartbeat_s
        self.metrics.source_state = "starting"

    # -- lifecycle -----------------------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self.signals.stopping

    def run(self) -> int:
        server, started = None, False
        try:
            if self.stopping:  # stopped while starting up
                return 0
            if self.config.review.dir:
                self.review = start_review(self.config)
            owner = None if self.review is None else Owner(self.review, lambda: list(self.classifier.labels),
                                                           self._learn)
            server = self._serve(owner) if self.config.http.bind else None
            if self.config.mqtt.host:
                from .mqtt import MqttPublisher

                self.mqtt = MqttPublisher(self.config.mqtt, self.classifier.model.name)
            self.events.emit("start", model=str(self.classifier.model), runtime=self.classifier.runtime,
                             source=self.uri)
            started = True
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
                with self.metrics.lock:
                    self.metrics.reconnects += 1
                    if self.metrics.outage_since is None:
                        self.metrics.outage_since = time.monotonic()
                self.metrics.source_state = f"reconnecting in {backoff:.1f} s"
                self.events.emit("source", state="retry", uri=self.uri, retry_in_s=backoff,
                                 error=error or ("source ended" if ended else "no frames"))
                log.warning("source %s: %s; retrying in %.1f s", self.uri, error or "ended", backoff)
                self._notify_ready()
                self._status()
                self._sleep(backoff)
                backoff = min(backoff * 2, self.config.source.reconnect_max_s)
        finally:
            self.notifier.send("STOPPING=1")
            mqtt = {"mqtt": self.mqtt.close()} if self.mqtt is not None else {}
            if started:  # a start that failed (e.g. the port taken) logged no start: no stop either
                self.events.emit("stop", frames=self.metrics.frames, inferences=self.metrics.inferences, **mqtt)
            if server is not None:
                server.shutdown()
        return 0

    # -- reload (SIGHUP, systemctl reload) -----------------------------------------------------------------------
    def _maybe_reload(self) -> None:
        if self.signals.reload:
            self.signals.reload = False
            self.reload()

    def reload(self) -> bool:
        """Re-read the config and the model it names; on success swap them in between two frames, else go on with
        the old ones and say why in one line. systemd sees RELOADING=1 ... READY=1 either way."""
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            if self.config_path is None:
                raise ConfigError("no config file to reload")
            config = load_config(self.config_path)
            classifier = classifier_for(config)
        except FlowercamError as err:
            log.error("reload failed, still running the previous config and model: %s", err)
            self.events.emit("reload", ok=False, error=str(err))
            self.notifier.send("READY=1", f"STATUS=reload failed ({err}); previous config and model kept")
            return False
        old, old_labels = self.config, self.classifier.labels
        self.config, self.classifier = config, classifier
        self.uri = redact(config.source.uri)
        if config.smoothing != old.smoothing or classifier.labels != old_labels:  # e.g. an adapter added classes
            s = config.smoothing
            self.smoother = Smoother(s.window, s.enter, s.stay)
        if config.source.fps != old.source.fps:
            self.pacer = Pacer(config.source.fps)
        self._reopen = config.source.uri != old.source.uri
        unchanged = [name for name in ("http", "events", "review") if getattr(config, name) != getattr(old, name)]
        if unchanged:
            log.warning("reload: changes to [%s] take effect at the next restart", ", ".join(unchanged))
        self.events.emit("reload", ok=True, model=str(classifier.model), source=self.uri,
                         restart_needed_for=unchanged)
        self.notifier.send("READY=1")
        self._status()
        return True

    def _serve(self, owner):
        """The HTTP endpoints on ``[http] bind``; a bind that fails names the setting."""
        bind = self.config.http.bind
        try:
            return serve(*parse_bind(bind, self.config.http.allow_remote), self.metrics, time.monotonic, owner)
        except OSError as err:
            raise ConfigError(f"http.bind = {bind!r}: {err.strerror or err} (another program on that port? "
                              "choose another port)") from None

    def _learn(self) -> bool:
        """Learn from the review's garden (the owner pressed the button), then reload to apply the adapter."""
        def done() -> None:
            self.signals.reload = True

        return self.review.learn(lambda: classifier_for(self.config, with_adapter=False),
                                 Path(self.config.model.adapter), done)

    def _ended(self) -> None:
        """A video file ended with loop = false: say so once, then idle (watchdog kept) until stopped."""
        self.metrics.source_state = "ended"
        self.events.emit("source", state="ended", uri=self.uri)
        log.info("source %s ended (loop = false)", self.uri)
        self._notify_ready()
        self._status()
        while not self.stopping and not self._reopen:
            self._sleep(1.0)

    # -- one connection to the source ------------------------------------------------------------------------
    def _run_source(self) -> tuple[bool, bool, str, bool]:
        """Open the source and stream until it ends or fails.

        Returns (delivered frames, ended, error, live). Only what the source itself raises ends a connection;
        a failure while classifying or writing events is the daemon's own, not a camera fault.
        """
        source = self._open()
        if isinstance(source, str):
            return False, False, source, True
        delivered, ended, error, seen_bad = False, False, "", 0
        self.metrics.source_state = "connected"
        with self.metrics.lock:
            self.metrics.outage_since = None
        self.events.emit("source", state="connected", uri=self.uri)
        self._notify_ready()
        try:
            while not self.stopping and not self._reopen:
                self._ping()
                self._maybe_reload()
                t0 = time.monotonic()
                try:
                    frame = source.read()
                except SourceError as err:
                    error = str(err)
                    break
                except Exception as err:  # a capture backend failing mid-stream (e.g. cv2.error): reconnect
                    error = f"{type(err).__name__}: {err}"
                    break
                capture_ms = (time.monotonic() - t0) * 1e3
                if source.bad_frames > seen_bad:  # undecodable frames skipped: counted, not a reconnect
                    with self.metrics.lock:
                        self.metrics.bad_frames += source.bad_frames - seen_bad
                    self._window["bad"] += source.bad_frames - seen_bad
                    seen_bad = source.bad_frames
                if frame is None:
                    ended = True
                    break
                with self.metrics.lock:
                    self.metrics.frames += 1
                wait = self.pacer.admit(source.live)
                if wait is None:  # a camera: frames in between keep it fresh, and are dropped
                    self._window["dropped"] += 1
                    with self.metrics.lock:
                        self.metrics.dropped += 1
                    continue
                self._sleep(wait)  # a file: each frame when it is due
                self.pacer.start()
                self._classify(frame, capture_ms)
                delivered = True
                self._maybe_heartbeat()
        finally:
            source.close()
        return delivered, ended, error, source.live

    def _open(self):
        """Open the source in a helper thread (a stream can take seconds), pinging the watchdog meanwhile and
        not waiting for it on a stop request. Returns the open source, or why it could not be opened."""
        outcome: dict = {}

        def work() -> None:
            try:
                source = open_source(self.config.source.uri)
                source.open()
                outcome["source"] = source
            except SourceError as err:
                outcome["error"] = str(err)
            except Exception as err:  # a capture backend failing to open
                outcome["error"] = f"{type(err).__name__}: {err}"

        opener = threading.Thread(target=work, name="source-open", daemon=True)
        opener.start()
        while opener.is_alive() and not self.stopping:
            self._ping()
            opener.join(0.1)
        if opener.is_alive():
            return "stopped while opening"
        return outcome.get("source") or outcome.get("error", "no source")

    def _classify(self, frame, capture_ms: float) -> None:
        result = self.classifier.classify_frame(frame, self.uri, k=3, capture_ms=capture_ms)
        now = time.monotonic()
        if self.review is not None:
            self.review.offer(frame, result, now)
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
            self.metrics.frame, self.metrics.frame_id = frame, self.metrics.frame_id + 1
            if changed or self.metrics.since is None:
                self.metrics.since = time.time()
            self.metrics.latest = {**result.to_dict(), "smoothed_label": label,
                                   "smoothed_confidence": round(self.smoother.confidence, 4)}
        if changed:
            self.metrics.remember(label, self.smoother.confidence, frame)
            if self.mqtt is not None:
                self._publish_state()
                self.mqtt.snapshot(self.metrics.snapshot() or b"")
        if changed:
            snapshot, problem = None, {}
            if self.config.events.snapshot_dir and self.smoother.current is not None:
                try:
                    snapshot = str(save_snapshot(Path(self.config.events.snapshot_dir), frame, label,
                                                 self.config.events.snapshot_max))
                except OSError as err:  # a full or read-only disk: the label event still goes out
                    problem = {"snapshot_error": f"{type(err).__name__}: {err.strerror or err}"}
                    log.warning("snapshot not saved: %s", problem["snapshot_error"])
            self.events.emit("label", label=label, index=self.smoother.current,
                             confidence=round(self.smoother.confidence, 4), previous=self._label(previous),
                             snapshot=snapshot, **problem)
            self._status()

    def _label(self, index: int | None) -> str:
        return "uncertain" if index is None else self.classifier.labels[index]

    # -- heartbeat, status, watchdog ---------------------------------------------------------------------------
    def _maybe_heartbeat(self) -> None:
        """A heartbeat every ``heartbeat_s``, also while the source is down (then with the outage, no label)."""
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        w = self._window
        elapsed = max(now - w["since"], 1e-9)
        outage = self.metrics.outage_seconds(now)
        self.events.emit("heartbeat", fps=round(w["frames"] / elapsed, 2),
                         mean_inference_ms=round(w["inference_ms"] / max(w["frames"], 1), 2),
                         peak_rss_mb=round(peak_rss_mb(), 1), frames_dropped=w["dropped"],
                         frames_bad=w["bad"],
                         reconnects=self.metrics.reconnects, source=self.metrics.source_state,
                         **({"outage_s": round(outage, 1), "label": None} if outage is not None
                            else {"label": self.metrics.label}))
        self._status(fps=w["frames"] / elapsed)
        if self.mqtt is not None:
            self._publish_state(fps=w["frames"] / elapsed)
        self._window = _new_window(now)
        self._next_heartbeat = now + self.config.events.heartbeat_s

    def _publish_state(self, fps: float | None = None) -> None:
        outage = self.metrics.outage_seconds(time.monotonic())
        self.mqtt.state(label=None if outage is not None else self.metrics.label,
                        confidence=round(self.smoother.confidence, 4), uncertain=self.smoother.current is None,
                        since=self.metrics.since, fps=round(self.metrics.fps() if fps is None else fps, 2),
                        source=self.metrics.source_state, outage_s=None if outage is None else round(outage, 1))

    def _status(self, fps: float | None = None) -> None:
        outage = self.metrics.outage_seconds(time.monotonic())
        if outage is not None:  # no stale label while nothing is seen
            self.notifier.send(f"STATUS=source down for {outage:.0f} s, {self.metrics.source_state}")
            return
        rate = f"{fps:.1f} fps, " if fps is not None else ""
        self.notifier.send(f"STATUS={rate}label {self.metrics.label}, source {self.metrics.source_state}")

    def _notify_ready(self) -> None:
        if not self._ready:
            self._ready = True
            self.notifier.send("READY=1", f"STATUS=model loaded, source {self.metrics.source_state}")

    def _ping(self) -> None:
        """WATCHDOG=1 every half watchdog interval, from READY on (start-up is TimeoutStartSec's)."""
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if self._ready and interval is not None and now - self._last_ping >= interval:
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
