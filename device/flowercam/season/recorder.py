"""Recording sightings from the daemon's smoothed labels, never slowing the camera: the frame loop notes each
frame's label in memory (:meth:`Recorder.observe`); one writer thread stores the episodes, the open one included,
in one transaction a second, so a kill loses at most the last second. A database that cannot be written (a full
disk, a lock held by another program) pauses recording, said once, until it can again; one that cannot be opened
costs the record, never the camera."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..model.files import write_atomically
from .store import Sighting, SightingsError, open_store, prune, upsert

log = logging.getLogger(__name__)

FLUSH_S = 1.0  # the writer's beat: at most this much (and a frame) is lost to a kill
FRAMES_KEPT = 2000  # best frames kept beside the database, oldest first out
FRAME_SIDE = 320  # px: a best frame's long side
PRUNE_EVERY_S = 86400.0


def frames_folder(db: Path) -> Path:
    """Where the best frames live: beside the database (``sightings-frames/`` for ``sightings.db``)."""
    return db.with_name(f"{db.stem}-frames")


@dataclass
class Episode:
    """The label being seen now, as it builds up."""

    key: str
    label: str
    index: int
    start: float
    end: float
    frames: int = 0
    confidence_sum: float = 0.0
    peak: float = -1.0
    best: object = None  # the most confident frame not yet written (an RGB array)

    def sighting(self, model_sha256: str, adapter_sha256: str | None) -> Sighting:
        return Sighting(self.label, self.index, round(self.start, 3), round(self.end, 3), self.frames,
                        round(self.confidence_sum / max(self.frames, 1), 4), round(self.peak, 4), model_sha256,
                        adapter_sha256)


class Recorder:
    """One database, one writer thread. ``on_problem(text or None)`` is told when recording stops or resumes."""

    def __init__(self, path: Path, keep_days: float, on_problem: Callable[[str | None], None] = lambda p: None
                 ) -> None:
        self.path, self.keep_days, self.on_problem = path, keep_days, on_problem
        self.model_sha256, self.adapter_sha256 = "", None
        self.recorded = 0  # rows written (episodes and their updates)
        self._open: Episode | None = None
        self._pending: dict[str, dict] = {}  # key -> the newest state of an episode not yet written
        self._frames: dict[str, object] = {}  # key -> its best frame not yet written
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._problem: str | None = None
        self._pruned_at = 0.0

    # -- the frame loop's side (never blocks on the disk) ---------------------------------------------------
    def identity(self, model_sha256: str, adapter_sha256: str | None) -> None:
        """The model and adapter answering from now on (a reload or a Learn may change them)."""
        self.model_sha256, self.adapter_sha256 = model_sha256, adapter_sha256

    def observe(self, index: int | None, label: str, confidence: float, frame, now: float) -> None:
        """One frame's smoothed label (None: uncertain, no episode)."""
        episode = self._open
        if episode is not None and episode.index != index:
            self._stage(episode)  # its last state: it ended with the frame before
            episode = self._open = None
        if index is None or self._thread is None:
            return
        if episode is None:
            episode = self._open = Episode(f"{now:.3f}-{index}", label, index, now, now)
        episode.end = now
        episode.frames += 1
        episode.confidence_sum += confidence
        if confidence > episode.peak:
            episode.peak, episode.best = confidence, frame
        self._stage(episode)  # its newest state: the writer stores whatever is newest at its beat

    def _stage(self, episode: Episode) -> None:
        row = episode.sighting(self.model_sha256, self.adapter_sha256).row()
        with self._lock:
            self._pending[episode.key] = row
            if episode.best is not None:
                self._frames[episode.key], episode.best = episode.best, None

    # -- the writer ----------------------------------------------------------------------------------------
    def start(self) -> Recorder:
        """Open the database (a damaged one is moved aside, said loudly) and start the writer. A database that
        cannot be opened leaves recording off, said the same way."""
        try:
            self._db, note = open_store(self.path)
        except (SightingsError, OSError, sqlite3.Error) as err:
            self._say(f"sightings off: {err}")
            return self
        if note:
            self._say(f"sightings: {note}")
        self._thread = threading.Thread(target=self._run, name="sightings", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the open episode and write what is pending (a last try)."""
        if self._open is not None:
            self._stage(self._open)
            self._open = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._flush()
            self._db.close()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self._flush()
            if time.time() - self._pruned_at >= PRUNE_EVERY_S:
                self._prune()

    def _flush(self) -> None:
        with self._lock:
            rows, frames = self._pending, self._frames
            self._pending, self._frames = {}, {}
        if not rows:
            return
        for key, frame in frames.items():
            name = self._save_frame(key, frame)
            if name is not None and key in rows:
                rows[key]["best_frame"] = name
        try:
            upsert(self._db, list(rows.values()))
        except sqlite3.Error as err:  # a full disk, a lock held too long: keep them, try again next beat
            with self._lock:
                self._pending = {**rows, **self._pending}
            self._say(f"sightings paused: {err} (recording resumes when it can write again)")
            return
        self.recorded += len(rows)
        if self._problem is not None and self._problem.startswith("sightings paused"):
            self._say(None)

    def _save_frame(self, key: str, frame) -> str | None:
        from PIL import Image

        folder = frames_folder(self.path)
        name = f"{key}.jpg"
        try:
            image = Image.fromarray(frame, "RGB")
            image.thumbnail((FRAME_SIDE, FRAME_SIDE))
            write_atomically(folder / name, lambda tmp: image.save(tmp, "JPEG", quality=80))
            kept = sorted(folder.glob("*.jpg"))
            for old in kept[:max(0, len(kept) - FRAMES_KEPT)]:
                old.unlink(missing_ok=True)
        except OSError as err:  # a full disk: the row is kept without its frame
            log.debug("best frame not kept: %s", err)
            return None
        return f"{folder.name}/{name}"

    def _prune(self) -> None:
        self._pruned_at = time.time()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            gone = prune(self._db, self.keep_days, self._pruned_at)
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            log.warning("sightings not pruned: %s", err)
            return
        for name in gone:
            (self.path.parent / name).unlink(missing_ok=True)

    def _say(self, problem: str | None) -> None:
        """Say once when recording stops or resumes (the journal; the daemon shows it on the page too)."""
        if problem == self._problem:
            return
        self._problem = problem
        if problem is None:
            log.info("sightings: recording again")
        else:
            log.error("%s", problem)
        self.on_problem(problem)
