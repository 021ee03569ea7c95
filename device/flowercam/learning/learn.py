"""``flowercam learn``: an adapter from the owner's own photos, on the device, in seconds.

``DIR`` holds one folder per class, named by the one rule of :func:`flowercam.model.labels.folder_class`: a folder
named after one of the model's classes (``rose``, ``common_dandelion``) improves that class, any other name adds a
class (``tulip``), and ``not_a_flower`` holds photos that must not be answered as a flower.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..model.adapter import Adapter, AdapterError
from ..model.files import write_atomically
from ..model.labels import class_name, folder_class
from ..model.preprocess import find_images
from ..model.sidecar import Sidecar
from .fit import DEFAULT_RECIPE, Photos, Recipe, fit

ANCHORS_SUFFIX = ".anchors.npz"
MAX_PHOTOS = 20_000  # more photos than this in one learn: refused (a wrong folder, e.g. a whole photo library)
STRONG_CHANGE = 20  # photos per class from which learning changes answers strongly (bench/results/learning.md)


class LearnError(AdapterError):
    """The folder cannot be learned from (empty, one class, colliding names, too many photos)."""


@dataclass(frozen=True)
class Folders:
    """The classes found in a learn folder: labels over base + added classes and each photo's class index."""

    labels: tuple[str, ...]
    paths: list[Path]
    classes: np.ndarray
    counts: dict[str, int]


def read_folders(root: Path, base_labels: tuple[str, ...]) -> Folders:
    """Class folders -> photos and class indices (base classes keep theirs, added ones follow)."""
    if not root.is_dir():
        raise LearnError(f"not a folder: {root}")
    labels, paths, classes, counts, seen = list(base_labels), [], [], {}, {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = find_images([folder])
        if not photos:
            continue
        index = folder_class(folder.name, base_labels)
        name = base_labels[index] if index is not None else class_name(folder.name)
        if not name:
            raise LearnError(f"{folder.name}: not a usable class name")
        if name.casefold() in seen:
            raise LearnError(f"folders {seen[name.casefold()]!r} and {folder.name!r} are both the class {name!r}: "
                             "merge them")
        seen[name.casefold()] = folder.name
        if index is None:
            labels.append(name)
            index = len(labels) - 1
        paths += photos
        classes += [index] * len(photos)
        counts[name] = len(photos)
    if not counts:
        raise LearnError(f"no photos in class folders under {root} (expected {root}/<class name>/*.jpg)")
    if len(counts) < 2:
        raise LearnError(f"only one class folder ({next(iter(counts))}) in {root}: learning needs at least two "
                         "(add the classes it should tell apart, or a not_a_flower folder)")
    if len(paths) > MAX_PHOTOS:
        raise LearnError(f"{len(paths)} photos in {root}: more than {MAX_PHOTOS:,} (is it the right folder?)")
    return Folders(tuple(labels), paths, np.array(classes, np.int64), counts)


def readable(folders: Folders, rows: np.ndarray, base_classes: int) -> Folders:
    """The folders with only the photos that could be read (``rows``): a class with none is no class (an added one
    is dropped and the next takes its index), and fewer than two classes is the same refusal as before."""
    classes = folders.classes[rows]
    kept = sorted(set(classes.tolist()))
    if len(kept) < 2:
        raise LearnError(f"only one class ({folders.labels[kept[0]]}) has photos that could be read: learning "
                         "needs at least two")
    index = {c: c for c in range(base_classes)}
    labels = list(folders.labels[:base_classes])
    for c in (c for c in kept if c >= base_classes):
        index[c] = len(labels)
        labels.append(folders.labels[c])
    return Folders(tuple(labels), [folders.paths[i] for i in rows], np.array([index[c] for c in classes], np.int64),
                   {folders.labels[c]: int((classes == c).sum()) for c in kept})


def embed(classifier, paths: list[Path], advance: Callable[[int], None] = lambda n: None,
          on_error: Callable[[Path, Exception], None] = lambda p, e: None
          ) -> tuple[np.ndarray, Photos, np.ndarray | None]:
    """Embed photos with the device's own preprocessing, by the base model alone. Returns (rows that worked,
    their Photos with labels -1, their similarity to the model's classes or None)."""
    ok, embeddings, probs, sims = [], [], [], []
    base = replace_adapter(classifier)
    try:
        for i, (path, result) in enumerate(classifier.classify_many(paths, k=1)):
            advance(1)
            if isinstance(result, Exception):
                on_error(path, result)
                continue
            ok.append(i)
            embeddings.append(result.embedding)
            probs.append(result.scores)
            sims.append(result.similarity)
    finally:  # the classifier gets its adapter back whatever happened (an interrupt included)
        replace_adapter(classifier, base)
    if not ok:
        raise LearnError("no photo could be read")
    similarity = None if sims[0] is None else np.array(sims, np.float64)
    return np.array(ok), Photos(np.array(embeddings), np.array(probs), np.full(len(ok), -1)), similarity


def replace_adapter(classifier, adapter: Adapter | None = None) -> Adapter | None:
    """Set the classifier's adapter (learning embeds with the base model alone); returns the previous one."""
    previous, classifier.adapter = classifier.adapter, adapter
    return previous


def anchors_for(model: Path, sidecar: Sidecar) -> Photos:
    """The anchor photos that travel with a model (``MODEL.anchors.npz``: its own training photos, embedded),
    refused when they were embedded by another model (an Edge TPU model uses its source model's)."""
    path = model.with_name(model.stem + ANCHORS_SUFFIX)
    if not path.is_file():
        raise LearnError(f"no anchors beside the model ({path.name}); build-models anchors writes them")
    try:
        with np.load(path, allow_pickle=False) as data:
            made_for = bytes(data["model_sha256"]).decode("ascii") if "model_sha256" in data.files else None
            emb = data["embeddings"].astype(np.float64) * float(data["scale"])
            anchors = Photos(emb, data["probs"].astype(np.float64), data["labels"].astype(np.int64))
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as err:
        raise LearnError(f"{path.name}: unreadable anchors ({type(err).__name__})") from None
    if made_for is not None and made_for not in (sidecar.sha256, sidecar.compiled_from):
        raise LearnError(f"{path.name} was made for another model (sha256 {made_for[:12]}…, this one "
                         f"{sidecar.sha256[:12]}…): build-models anchors writes them again")
    return anchors


def learn(classifier, root: Path, recipe: Recipe = DEFAULT_RECIPE, advance: Callable[[int], None] = lambda n: None,
          on_error: Callable[[Path, Exception], None] = lambda p, e: None,
          announce: Callable[[int], None] = lambda n: None) -> Adapter:
    """Fit an adapter for ``classifier``'s model from the class folders under ``root`` (not yet written)."""
    sidecar = classifier.sidecar
    if sidecar.embedding is None:
        raise LearnError(f"{classifier.model.name} has no embedding output: learning needs one "
                         "(build-models add-embedding MODEL)")
    folders = read_folders(root, sidecar.labels)
    anchors = anchors_for(classifier.model, sidecar)
    announce(len(folders.paths))
    rows, photos, _ = embed(classifier, folders.paths, advance, on_error)
    folders = readable(folders, rows, len(sidecar.labels))
    own = Photos(photos.embeddings, photos.probs, folders.classes)
    adapter = learn_photos(own, anchors, folders.labels, sidecar, recipe)
    info = {**adapter.info, "learned_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "folder": str(root), "photos_failed": int(len(folders.paths) - len(rows)), "model": classifier.model.name}
    return replace(adapter, info=info)


def learn_photos(own: Photos, anchors: Photos, labels: tuple[str, ...], sidecar, recipe: Recipe = DEFAULT_RECIPE
                 ) -> Adapter:
    """The adapter and its photo counts from embedded photos: what :func:`learn` does after embedding (the bench
    calls it on cached embeddings; a test proves the two give the same adapter)."""
    adapter = fit(own, anchors, labels, len(sidecar.labels), sidecar.sha256, recipe)
    counts = {labels[c]: int((own.labels == c).sum()) for c in np.unique(own.labels)}
    return replace(adapter, photos=counts, info={"recipe": asdict(recipe)})


def few_photos(adapter: Adapter) -> str | None:
    """What to tell the owner when a taught class had fewer photos than :data:`STRONG_CHANGE` (its answers mostly
    stay uncertain), or None: ``flowercam learn`` prints it, the page's Learn shows it."""
    few = sorted(name for name, n in adapter.photos.items() if n < STRONG_CHANGE)
    if not few:
        return None
    return (f"{', '.join(few)}: fewer than {STRONG_CHANGE} photos, so most of their answers stay 'uncertain'; "
            f"{STRONG_CHANGE} or more photos a class make a stronger change")


def write_anchors(classifier, paths: list[Path], labels: np.ndarray, advance: Callable[[int], None] = lambda n: None
                  ) -> Path:
    """Embed a model's own training photos and write them beside it as its anchors (int8 embeddings, float16
    probabilities): what keeps an adapter from moving the classes nobody taught it."""
    rows, photos, _ = embed(classifier, paths, advance)
    path = classifier.model.with_name(classifier.model.stem + ANCHORS_SUFFIX)
    arrays = {"embeddings": np.round(photos.embeddings * 127).astype(np.int8), "scale": 1 / 127,
              "probs": photos.probs.astype(np.float16), "labels": np.asarray(labels)[rows].astype(np.int16),
              "model_sha256": np.frombuffer(classifier.sidecar.sha256.encode(), np.uint8)}
    return write_atomically(path, lambda tmp: np.savez_compressed(tmp, **arrays))  # the name ends in .npz
