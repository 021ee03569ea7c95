"""The daemon's review queue: frames kept for the owner to label, then filed in the garden for ``flowercam learn``.

``[review] dir = DIR`` keeps frames in ``DIR/review/`` (a JPEG and a JSON of its best guesses each): every frame
answered uncertain and one in ``confident_every`` confident ones, at most one every ``every_s``, within
``quota_mb`` (oldest first out). Frames are written by a helper thread from a short queue: a full queue drops the
frame, classification never waits. A label moves the frame into ``DIR/garden/<class folder>/`` (garden.py);
"skip" deletes it; the last labels can be undone. A frame is found by its id in the queue folder, never by a path
from the request.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import FlowercamError
from ...model.files import is_temporary, write_atomically
from ...model.labels import class_name
from ..config import Config, ReviewConfig
from .auth import read_token
from .garden import Garden, UnknownFrame, owned
from .learner import Learner

log = logging.getLogger(__name__)

FRAME_ID = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{4}$")  # UTC date, time to the microsecond: ids sort by time
LISTED = 60  # frames listed on the page at most (newest first)
FRAME_SIDE = 1024  # px: kept frames are shrunk to this long side (learning reads the model's input size anyway)
SKIP = "skip"
UNDO = 50  # labels that can be undone, newest first


@dataclass
class Review:
    """The queue of frames to review under ``root``/review, filing into the garden under ``root``/garden."""

    root: Path
    every_s: float = 20.0
    confident_every: int = 50
    quota_bytes: int = 200 << 20
    kept: int = 0
    dropped: int = 0
    _confident_seen: int = 0
    _last_kept: float = field(default=-1e18)
    _queue: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=4))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _filed: list = field(default_factory=list)  # (where a label put the photo, its id, its queue JSON), oldest first

    def __post_init__(self) -> None:
        self.garden = Garden(self.root / "garden")
        self.learner = Learner(self.garden, self.rescore)

    @property
    def pending(self) -> Path:
        return owned(self.root / "review")

    def start(self) -> Review:
        threading.Thread(target=self._writer, name="review-writer", daemon=True).start()
        return self

    def pace(self, config: ReviewConfig) -> None:
        """Keep frames at the pace and within the quota of ``config`` (a reload's new ``[review]``)."""
        self.every_s, self.confident_every = config.every_s, config.confident_every
        self.quota_bytes = int(config.quota_mb * (1 << 20))

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
        try:
            self._queue.put_nowait((frame, {"time": round(wall, 3), **_guesses(result)}, wall))
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
        self._write_entry(frame_id, {"id": frame_id, **entry})
        write_atomically(self.pending / f"{frame_id}.jpg", lambda tmp: image.save(tmp, "JPEG", quality=90), 0o600)
        with self._lock:
            self.kept += 1
            self._evict()

    def _write_entry(self, frame_id: str, entry: dict) -> None:
        write_atomically(self.pending / f"{frame_id}.json",
                         lambda tmp: tmp.write_text(json.dumps(entry), encoding="utf-8"), 0o600)

    def _waiting(self) -> list[Path]:
        return sorted(f for f in self.pending.glob("*.jpg") if not is_temporary(f))  # ids sort by time

    def _evict(self) -> None:
        frames = self._waiting()
        total = sum(f.stat().st_size for f in frames)
        for old in frames:
            if total <= self.quota_bytes:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)

    # -- the page --------------------------------------------------------------------------------------------
    def frames(self) -> tuple[list[dict], int]:
        """The frames waiting for a label, newest first (at most :data:`LISTED`: their guesses, time, and why
        they were kept), and how many wait in all."""
        waiting, out = self._waiting(), []
        for jpg in reversed(waiting[-LISTED:]):
            try:
                out.append(json.loads(jpg.with_suffix(".json").read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out, len(waiting)

    def frame_path(self, frame_id: str) -> Path | None:
        """The JPEG of a queued frame, found by id (never a path from the request)."""
        if not FRAME_ID.fullmatch(frame_id):
            return None
        path = self.pending / f"{frame_id}.jpg"
        return path if path.is_file() else None

    def label(self, frame_id: str, name: str, known: Iterable[str] = (), new: bool = False) -> str:
        """File a queued frame under a class (or delete it: ``skip``). Returns the folder it went to ("" for
        skip). A new name nearly one of the garden's classes or of ``known`` raises NearMiss unless ``new``."""
        path = self.frame_path(frame_id)
        if path is None:
            raise UnknownFrame(f"no frame {frame_id[:40]!r} waiting for review")
        if class_name(name).casefold() == SKIP:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
            return ""
        folder = self.garden.folder_of(name, known, new)
        entry = _read(path.with_suffix(".json"))
        filed = self.garden.file(path, folder)
        path.with_suffix(".json").unlink(missing_ok=True)
        with self._lock:
            self._filed = [*self._filed[-(UNDO - 1):], (filed, frame_id, entry)]
        return folder

    def undo(self) -> str:
        """Put the last labelled frame back in the queue; its id. UnknownFrame when there is none to undo."""
        with self._lock:
            while self._filed:
                filed, frame_id, entry = self._filed.pop()
                try:
                    os.replace(filed, self.pending / f"{frame_id}.jpg")
                except FileNotFoundError:  # relabelled or deleted since: the one before
                    continue
                self._write_entry(frame_id, entry or {"id": frame_id, "time": None, "uncertain": True,
                                                      "reason": "", "top": []})
                return frame_id
        raise UnknownFrame("no label to undo")

    def relabel(self, folder: str, photo_id: str, name: str, known: Iterable[str] = (), new: bool = False) -> str:
        """Move a labelled photo to another class, or delete it (``delete``). Returns the folder ("" deleted)."""
        photo = self.garden.photo(folder, photo_id)
        if class_name(name).casefold() == "delete":
            photo.unlink(missing_ok=True)
            return ""
        target = self.garden.folder_of(name, known, new)
        self.garden.file(photo, target)
        return target

    def rescore(self, classifier) -> int:
        """The waiting frames' guesses again, by ``classifier`` (after a learn); how many were re-scored."""
        done = 0
        for jpg in self._waiting():
            entry = _read(jpg.with_suffix(".json"))
            try:
                result = classifier.classify(jpg, k=3)
            except (OSError, ValueError, FlowercamError) as err:  # evicted or filed meanwhile
                log.debug("not re-scored: %s: %s", jpg.name, err)
                continue
            if entry is not None and jpg.is_file():
                self._write_entry(jpg.stem, {**entry, **_guesses(result), "rescored": True})
                done += 1
        return done


def _guesses(result) -> dict:
    """What the page shows of an answer: uncertain or not, why, the best three guesses."""
    return {"uncertain": result.uncertain, "reason": result.reason,
            "top": [{"label": c.label, "index": c.index, "score": round(c.score, 4)} for c in result.top_k]}


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def start_review(config: Config) -> tuple[Review, str]:
    """The review queue of ``[review]``, its writer started, and the labelling token (read, or made)."""
    r = config.review
    token_file = Path(r.token_file) if r.token_file else Path(r.dir) / "token"
    review = Review(Path(r.dir), r.every_s, r.confident_every, int(r.quota_mb * (1 << 20)))
    token = read_token(token_file)
    log.info("review: frames in %s, labelled photos in %s; the labelling token is in %s (sudo cat it; it is "
             "never logged)", review.pending, review.garden.folder, token_file)
    return review.start(), token
