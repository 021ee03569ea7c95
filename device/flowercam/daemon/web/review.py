"""The daemon's review loop: frames kept for the owner to label, labelled frames filed for ``flowercam learn``.

``[review] dir = DIR`` keeps frames in ``DIR/review/`` (a JPEG and a JSON of its best guesses each): every frame
answered uncertain and one in ``confident_every`` confident ones, at most one every ``every_s``, within
``quota_mb`` (oldest first out). Frames are written by a helper thread from a short queue: a full queue drops the
frame, classification never waits. A label moves the frame into ``DIR/garden/<class folder>/``, the layout
``flowercam learn`` reads; "skip" deletes it. Names come from the request only as a class name (checked, turned
into a folder name by the one rule); paths never do: a frame is found by its id in the queue folder.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import FlowercamError
from ...model.adapter import Adapter
from ...model.files import is_temporary, write_atomically
from ...model.labels import class_name
from ..config import Config, ReviewConfig

log = logging.getLogger(__name__)

FRAME_ID = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{4}$")  # UTC date, time to the microsecond: ids sort by time
MAX_NAME = 60  # characters in a class name given on the page
LISTED = 60  # frames listed on the page at most (newest first)
FRAME_SIDE = 1024  # px: kept frames are shrunk to this long side (learning reads the model's input size anyway)
SKIP = "skip"


class ReviewError(ValueError):
    """A label the review refuses (bad class name); the message is for the page."""


class UnknownFrame(ReviewError):
    """No frame of that id is waiting for review."""


def folder_for(name: str) -> str:
    """The class folder a class name is filed under: spaces become underscores (the inverse of
    :func:`flowercam.model.labels.class_name`). Raises ReviewError for a name that cannot be a folder."""
    name = class_name(name)
    if not name or len(name) > MAX_NAME or not re.fullmatch(r"[\w][\w' .-]*", name) or ".." in name:
        raise ReviewError(f"not a usable class name: {name[:MAX_NAME]!r} (letters, digits, spaces, ' . -)")
    return name.replace(" ", "_")


def read_token(path: Path) -> str:
    """The labelling token in ``path``, made (random, mode 0600) at the first start."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(18) + "\n")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 8:
        raise OSError(f"{path}: the labelling token is shorter than 8 characters")
    return token


def _owned(folder: Path) -> Path:
    """A folder the daemon owns, made again (owner-only) if someone deleted it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


@dataclass
class Review:
    """The queue of frames to review and the labelled garden, under one folder."""

    root: Path
    every_s: float = 20.0
    confident_every: int = 50
    quota_bytes: int = 200 << 20
    token: str = ""
    kept: int = 0
    dropped: int = 0
    _confident_seen: int = 0
    _last_kept: float = field(default=-1e18)
    learning: dict = field(default_factory=lambda: {"state": "idle"})  # the last learn: state, when, outcome
    _queue: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=4))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pending(self) -> Path:
        return _owned(self.root / "review")

    @property
    def garden(self) -> Path:
        return _owned(self.root / "garden")

    def start(self) -> Review:
        threading.Thread(target=self._writer, name="review-writer", daemon=True).start()
        return self

    def pace(self, config: ReviewConfig) -> None:
        """Keep frames at the pace and within the quota of ``config`` (a reload's new ``[review]``)."""
        self.every_s, self.confident_every = config.every_s, config.confident_every
        self.quota_bytes = int(config.quota_mb * (1 << 20))

    def authorised(self, token: str | None) -> bool:
        """Whether a request's token is the owner's (constant-time compare; no token set: nobody is)."""
        return bool(self.token) and token is not None and hmac.compare_digest(token.encode(), self.token.encode())

    # -- keeping frames (main loop: never blocks) ------------------------------------------------------------
    def offer(self, frame, result, now: float | None = None) -> bool:
        """Keep this frame for review if the rules say so; True when it was queued for writing."""
        now = time.monotonic() if now is None else now
        if not result.uncertain:
            self._confident_seen += 1
            if not self.confident_every or self._confident_seen % self.confident_every:
                return False
        if now - self._last_kept < self.every_s:
            return False
        wall = time.time()
        entry = {"time": round(wall, 3), "uncertain": result.uncertain, "reason": result.reason,
                 "top": [{"label": c.label, "index": c.index, "score": round(c.score, 4)} for c in result.top_k]}
        try:
            self._queue.put_nowait((frame, entry, wall))
        except queue.Full:
            self.dropped += 1
            return False
        self._last_kept = now
        return True

    def _writer(self) -> None:
        while True:
            frame, entry, wall = self._queue.get()
            try:
                self._write(frame, entry, wall)
            except OSError as err:  # a full or read-only disk: the frame is lost, classification goes on
                self.dropped += 1
                log.warning("review frame not kept: %s", err)
            finally:
                self._queue.task_done()

    def _write(self, frame, entry: dict, wall: float) -> None:
        from PIL import Image

        frame_id = (time.strftime("%Y%m%dT%H%M%S", time.gmtime(wall)) + f"{int(wall % 1 * 1e6):06d}-"
                    + secrets.token_hex(2))
        image = Image.fromarray(frame, "RGB")
        image.thumbnail((FRAME_SIDE, FRAME_SIDE))
        write_atomically(self.pending / f"{frame_id}.json",
                         lambda tmp: tmp.write_text(json.dumps({"id": frame_id, **entry}), encoding="utf-8"), 0o600)
        write_atomically(self.pending / f"{frame_id}.jpg", lambda tmp: image.save(tmp, "JPEG", quality=90), 0o600)
        with self._lock:
            self.kept += 1
            self._evict()

    def _evict(self) -> None:
        frames = sorted(f for f in self.pending.glob("*.jpg") if not is_temporary(f))  # ids sort by time
        total = sum(f.stat().st_size for f in frames)
        for old in frames:
            if total <= self.quota_bytes:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)

    def _existing(self, folder: str) -> str:
        """The garden's own folder for this class if it has one in another spelling (``Tulip`` -> ``tulip``)."""
        wanted = class_name(folder).casefold()
        return next((d.name for d in self.garden.iterdir() if d.is_dir() and class_name(d.name).casefold() == wanted),
                    folder)

    # -- the page --------------------------------------------------------------------------------------------
    def frames(self) -> list[dict]:
        """The frames waiting for a label, newest first (their guesses, time, and why they were kept)."""
        out = []
        for jpg in sorted((f for f in self.pending.glob("*.jpg") if not is_temporary(f)), reverse=True)[:LISTED]:
            try:
                out.append(json.loads(jpg.with_suffix(".json").read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out

    def counts(self) -> dict[str, int]:
        """Labelled photos per class folder in the garden."""
        return {d.name: sum(1 for f in d.iterdir() if f.suffix == ".jpg")
                for d in sorted(self.garden.iterdir()) if d.is_dir()}

    def frame_path(self, frame_id: str) -> Path | None:
        """The JPEG of a queued frame, found by id (never a path from the request)."""
        if not FRAME_ID.fullmatch(frame_id):
            return None
        path = self.pending / f"{frame_id}.jpg"
        return path if path.is_file() else None

    def label(self, frame_id: str, name: str) -> str:
        """File a queued frame under a class (or delete it: ``skip``). Returns the folder it went to ("" for
        skip)."""
        path = self.frame_path(frame_id)
        if path is None:
            raise UnknownFrame(f"no frame {frame_id[:40]!r} waiting for review")
        with self._lock:
            if class_name(name).casefold() == SKIP:
                folder = ""
                path.unlink(missing_ok=True)
            else:
                folder = self._existing(folder_for(name))
                try:
                    os.replace(path, _owned(self.garden / folder) / path.name)
                except FileNotFoundError:  # evicted (or filed by another request) since it was looked up
                    raise UnknownFrame(f"frame {frame_id!r} is no longer waiting for review") from None
            path.with_suffix(".json").unlink(missing_ok=True)
        return folder

    # -- learning from the garden (a helper thread; the daemon applies the adapter between frames) ------------
    def learn(self, make_classifier: Callable[[], object], adapter: Path, done: Callable[[Adapter], None]) -> bool:
        """Start ``flowercam learn`` on the garden, writing ``adapter`` (atomically), then hand it to ``done``,
        which applies it and calls :meth:`finished`. False when a learn is already running."""
        with self._lock:
            if self.learning["state"] == "learning":
                return False
            self.learning = {"state": "learning", "since": round(time.time(), 3)}
        threading.Thread(target=self._learn, args=(make_classifier, adapter, done), name="learn", daemon=True).start()
        return True

    def _learn(self, make_classifier, adapter: Path, done) -> None:
        from ...learning.learn import learn

        try:
            fitted = learn(make_classifier(), self.garden)
            fitted.save(adapter)
        except Exception as err:  # noqa: BLE001 (a job always ends in "done" or "failed: reason", never "learning")
            known = isinstance(err, FlowercamError | OSError)
            self.finished(None, str(err) if known else f"{type(err).__name__}: {err}")
            return
        done(fitted)

    def finished(self, fitted: Adapter | None, error: str | None = None) -> None:
        """End the learn: "done" with what it learned, or "failed" with its one-line reason (shown on the page
        until the next learn)."""
        if error is not None:
            self.learning = {"state": "failed", "at": round(time.time(), 3), "error": error}
            log.error("learning from the review failed: %s", error)
            return
        self.learning = {"state": "done", "at": round(time.time(), 3), "photos": fitted.photos,
                         "classes_added": list(fitted.added)}
        log.info("learned from %d labelled photos, now answering with the new adapter", sum(fitted.photos.values()))


def start_review(config: Config) -> Review:
    """The review queue of ``[review]``, its writer started and its token read (or made)."""
    r = config.review
    token_file = Path(r.token_file) if r.token_file else Path(r.dir) / "token"
    review = Review(Path(r.dir), r.every_s, r.confident_every, int(r.quota_mb * (1 << 20)), read_token(token_file))
    log.info("review: frames in %s, labelled photos in %s; the labelling token is in %s (sudo cat it; it is "
             "never logged)", review.pending, review.garden, token_file)
    return review.start()
