"""The owner's side of the HTTP endpoints (with ``[review]`` on): what each request under ``/review`` and
``/learn`` answers, apart from HTTP itself (http.py routes to it). Every answer is a status and, for JSON, a
reason the page can show.

GET ``/review`` (the queue, how many wait, photos per class, the learn's state, the classes known),
``/review/<id>.jpg``, ``/review/garden/<folder>`` (a class's labelled photos), ``/review/garden/<folder>/<id>.jpg``.
POST, each with the owner's token: ``/review/<id>`` and ``/review/garden/<folder>/<id>`` (``{"label": ...,
"new": false}``; ``skip`` and ``delete`` remove), ``/review/undo``, ``/learn``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from .auth import TOKEN_HEADER, authorised
from .garden import NearMiss, ReviewError, UnknownFrame
from .review import Review

JPEG = "image/jpeg"


@dataclass
class Owner:
    """What the page may do for the owner: the review queue (and its garden and learner), the classes known now,
    starting a learn, and the token every change needs."""

    review: Review
    labels: Callable[[], list[str]]
    learn: Callable[[], bool]
    token: str = ""

    def known(self) -> list[str]:
        """The classes a label may name without being asked about: the model's and adapter's, the garden's."""
        return [*self.labels(), "not a flower", *self.review.garden.classes()]


def _segments(path: str) -> list[str]:
    return [unquote(part) for part in path.strip("/").split("/")]


def get(owner: Owner, path: str) -> tuple[int, dict | bytes]:
    """The answer to a GET under ``/review``: (status, a JSON value or JPEG bytes)."""
    review, parts = owner.review, _segments(path)
    if parts == ["review"]:
        frames, waiting = review.frames()
        return 200, {"frames": frames, "waiting": waiting, "garden": review.garden.counts(),
                     "learning": review.learner.state, "labels": owner.labels(), "kept": review.kept,
                     "dropped": review.dropped}
    try:
        if len(parts) == 2 and parts[1].endswith(".jpg"):
            frame = review.frame_path(parts[1][:-len(".jpg")])
            return (200, frame.read_bytes()) if frame is not None else (404, {"error": "no such frame"})
        if len(parts) == 3 and parts[1] == "garden":
            return 200, {"folder": parts[2], "photos": review.garden.photos(parts[2])}
        if len(parts) == 4 and parts[1] == "garden" and parts[3].endswith(".jpg"):
            return 200, review.garden.photo(parts[2], parts[3][:-len(".jpg")]).read_bytes()
    except (UnknownFrame, FileNotFoundError) as err:  # gone since it was listed
        return 404, {"error": str(err) if isinstance(err, UnknownFrame) else "no longer there"}
    return 404, {"error": "not found"}


def post(owner: Owner, path: str, body: bytes, token: str | None) -> tuple[int, dict]:
    """The answer to a POST (each needs the owner's token): (status, JSON)."""
    if not authorised(owner.token, token):
        return 403, {"error": f"no or wrong token (the {TOKEN_HEADER} header)"}
    review, parts = owner.review, _segments(path)
    if parts == ["learn"]:
        started = owner.learn()
        return (202 if started else 409), {"learning": review.learner.state}
    try:
        if parts == ["review", "undo"]:
            return 200, {"returned": review.undo(), "garden": review.garden.counts()}
        label, new = _label_of(body)
        if len(parts) == 2 and parts[0] == "review":
            folder = review.label(parts[1], label, owner.known(), new)
        elif len(parts) == 4 and parts[:2] == ["review", "garden"]:
            folder = review.relabel(parts[2], parts[3], label, owner.known(), new)
        else:
            return 404, {"error": "not found"}
    except NearMiss as err:
        return 409, {"error": str(err), "suggestion": err.suggestion}
    except ReviewError as err:
        return (404 if isinstance(err, UnknownFrame) else 400), {"error": str(err)}
    return 200, {"filed_as": folder, "garden": review.garden.counts()}


def _label_of(body: bytes) -> tuple[str, bool]:
    """The label of a body (and whether the owner says it is a new class), else a ReviewError with a reason."""
    try:
        value = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        raise ReviewError("the body is not JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("label"), str):
        raise ReviewError('expected {"label": "a class name"}')
    return value["label"], value.get("new") is True
