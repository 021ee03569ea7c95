"""The owner's labelled photos: a folder per class under ``DIR/garden``, the layout ``flowercam learn`` reads.

Names come from the page only as class names (checked, and turned into folder names by one rule); paths never
do: a photo is found by its id among the files of a class folder that exists. A new name that is nearly a class
it already has (``rose.``, ``Roses``) is asked about, not made a class, unless the owner says it is new.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from ...model.files import is_temporary
from ...model.labels import class_name

MAX_NAME = 60  # characters in a class name given on the page
PHOTO_ID = re.compile(r"^[\w][\w.-]{0,99}$")  # a photo's file name without ".jpg" (frames' ids, or any by hand)
NEAR = 0.85  # difflib's ratio from which a new name is asked about


class ReviewError(ValueError):
    """A request the review refuses (a bad class name, a bad body); the message is for the page."""


class UnknownFrame(ReviewError):
    """No frame (or labelled photo) of that id."""


class NearMiss(ReviewError):
    """A new class name that is nearly one the camera has: the page asks which was meant."""

    def __init__(self, name: str, suggestion: str) -> None:
        super().__init__(f"is {name!r} the class {suggestion!r}? (or say it is a new class)")
        self.suggestion = suggestion


def folder_for(name: str) -> str:
    """The class folder a class name is filed under: spaces become underscores (the inverse of
    :func:`flowercam.model.labels.class_name`). Raises ReviewError for a name that cannot be a folder."""
    name = class_name(name)
    if not name or len(name) > MAX_NAME or not re.fullmatch(r"[\w][\w' .-]*", name) or ".." in name:
        raise ReviewError(f"not a usable class name: {name[:MAX_NAME]!r} (letters, digits, spaces, ' . -)")
    return name.replace(" ", "_")


def near_miss(name: str, classes: Iterable[str]) -> str | None:
    """The class ``name`` nearly is (the same letters and digits, or a close spelling), else None."""
    def key(text: str) -> str:
        return "".join(c for c in text.casefold() if c.isalnum())

    wanted = class_name(name)
    by_case = {class_name(c).casefold(): class_name(c) for c in classes if class_name(c)}
    if wanted.casefold() in by_case:
        return None  # the class itself, in any case
    same = [c for c in by_case.values() if key(c) == key(wanted)]
    if same:
        return same[0]
    close = difflib.get_close_matches(wanted.casefold(), list(by_case), n=1, cutoff=NEAR)
    return by_case[close[0]] if close else None


def owned(folder: Path) -> Path:
    """A folder the daemon owns, made again (owner-only) if someone deleted it."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


class Garden:
    """The labelled photos under ``root``: filed, counted, listed, relabelled or deleted by the owner."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return owned(self.root)

    def counts(self) -> dict[str, int]:
        """Labelled photos per class folder (what the next Learn uses)."""
        return {d.name: sum(1 for f in d.iterdir() if f.suffix == ".jpg" and not is_temporary(f))
                for d in sorted(self.folder.iterdir()) if d.is_dir()}

    def classes(self) -> list[str]:
        """The class names of its folders."""
        return [class_name(name) for name in self.counts()]

    def folder_of(self, name: str, known: Iterable[str] = (), new: bool = False) -> str:
        """The folder a class name is filed under: its own folder in another spelling if it has one
        (``Tulip`` -> ``tulip``); a new name nearly one of its classes or of ``known`` raises NearMiss unless
        ``new``."""
        folder = folder_for(name)
        wanted = class_name(folder).casefold()
        existing = next((f for f in self.counts() if class_name(f).casefold() == wanted), None)
        if existing is not None:
            return existing
        suggestion = None if new else near_miss(folder, [*self.classes(), *known])
        if suggestion is not None:
            raise NearMiss(class_name(name), suggestion)
        return folder

    def file(self, photo: Path, folder: str) -> Path:
        """Move ``photo`` into a class folder; its new path. A photo gone meanwhile is UnknownFrame."""
        with self._lock:
            target = owned(self.folder / folder) / photo.name
            try:
                os.replace(photo, target)
            except FileNotFoundError:  # filed, evicted or deleted since it was looked up
                raise UnknownFrame(f"{photo.stem!r} is no longer there") from None
        return target

    def photos(self, folder: str) -> list[str]:
        """The ids of a class folder's photos, newest first (frames' ids sort by time)."""
        path = self._class_folder(folder)
        return sorted((f.stem for f in path.glob("*.jpg") if not is_temporary(f)), reverse=True)

    def photo(self, folder: str, photo_id: str) -> Path:
        """A labelled photo by class folder and id (never a path from the request); UnknownFrame if none."""
        path = self._class_folder(folder) / f"{photo_id}.jpg"
        if not PHOTO_ID.fullmatch(photo_id) or not path.is_file():
            raise UnknownFrame(f"no photo {photo_id[:40]!r} in {folder[:MAX_NAME]!r}")
        return path

    def _class_folder(self, folder: str) -> Path:
        if folder not in self.counts():  # only a folder that exists, by its exact name
            raise UnknownFrame(f"no class folder {folder[:MAX_NAME]!r}")
        return self.folder / folder
