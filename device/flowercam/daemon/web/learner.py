"""Learning from the garden on a helper thread (the page's Learn button): its progress and outcome for the page,
and the frames waiting for a label re-scored with what it learned."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import FlowercamError
from ...model.adapter import Adapter
from .garden import Garden

log = logging.getLogger(__name__)


class Learner:
    """One learn at a time. ``state`` is what the page shows: idle; learning (photos embedded so far, of how
    many); done (when, photos per class, classes added, frames re-scored, and the advice when a class had too few
    photos); failed (when, the one-line reason). A learn always ends in done or failed, never stays "learning"."""

    def __init__(self, garden: Garden, rescore: Callable[[object], int]) -> None:
        self.garden, self._rescore = garden, rescore
        self.state: dict = {"state": "idle"}
        self._lock = threading.Lock()

    def start(self, make_classifier: Callable[[], object], adapter: Path, done: Callable[[Adapter], None]) -> bool:
        """Learn from the garden on a helper thread, write ``adapter`` (atomically), re-score the waiting frames,
        then hand the adapter to ``done``, which applies it and calls :meth:`finished`. False when a learn is
        already running."""
        with self._lock:
            if self.state["state"] == "learning":
                return False
            self.state = {"state": "learning", "since": round(time.time(), 3), "done": 0, "total": None}
        threading.Thread(target=self.run, args=(make_classifier, adapter, done), name="learn", daemon=True).start()
        return True

    def run(self, make_classifier: Callable[[], object], adapter: Path, done: Callable[[Adapter], None]) -> None:
        """The learn itself (the helper thread's body)."""
        from ...learning.learn import learn, replace_adapter

        try:
            classifier = make_classifier()
            fitted = learn(classifier, self.garden.folder, advance=self._advance, announce=self._announce)
            fitted.save(adapter)
        except Exception as err:  # noqa: BLE001 (a job always ends in "done" or "failed: reason", never "learning")
            known = isinstance(err, FlowercamError | OSError)
            self.finished(None, str(err) if known else f"{type(err).__name__}: {err}")
            return
        replace_adapter(classifier, fitted)
        try:
            self.state = {**self.state, "rescored": self._rescore(classifier)}
        except (FlowercamError, OSError) as err:  # the guesses shown stay the old ones; the learn stands
            log.warning("waiting frames not re-scored: %s", err)
        done(fitted)

    def _announce(self, total: int) -> None:
        self.state = {**self.state, "total": total}

    def _advance(self, n: int) -> None:
        self.state = {**self.state, "done": self.state.get("done", 0) + n}

    def finished(self, fitted: Adapter | None, error: str | None = None) -> None:
        """End the learn: "done" with what it learned, or "failed" with its one-line reason (shown on the page
        until the next learn)."""
        from ...learning.learn import few_photos

        if error is not None:
            self.state = {"state": "failed", "at": round(time.time(), 3), "error": error}
            log.error("learning from the review failed: %s", error)
            return
        self.state = {"state": "done", "at": round(time.time(), 3), "photos": fitted.photos,
                      "classes_added": list(fitted.added), "rescored": self.state.get("rescored", 0),
                      "advice": few_photos(fitted)}
        log.info("learned from %d labelled photos, now answering with the new adapter", sum(fitted.photos.values()))
