"""Your own flowers: a folder of class folders, read into the same record as the Oxford layout.

Two layouts (the one of Model Maker's ``DataLoader.from_folder``, Keras's ``image_dataset_from_directory`` and
torchvision's ``ImageFolder``):

- ``DATA/<class name>/*.jpg``: split here, per class (stratified), seeded; the split is written into the run
  folder (``split.json``) so that evaluation, export and later runs use the same photos.
- ``DATA/train/<class name>/…``, ``DATA/test/<class name>/…`` and optionally ``DATA/val/<class name>/…`` (when
  there is no ``val/``, it is drawn from ``train/`` the same way).

Any file Pillow reads is a photo. Class names are the folder names, readable (``common_dandelion`` ->
``common dandelion``), sorted; any number of classes from 2 up.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flowercam.model.labels import class_name
from flowercam.model.preprocess import image_suffixes

from .data import DatasetError, Flowers102, Sample

SPLIT_FOLDERS = ("train", "val", "test")
DEFAULT_RATIOS = (0.7, 0.15, 0.15)  # train, val, test
DEFAULT_SEED = 0
SPLIT_FILE = "split.json"
MIN_TRAIN = 5  # fewer training photos than this: the class is reported as too small to train well
IMBALANCE = 10.0  # largest / smallest class (training photos) above this: reported as extreme imbalance


def _photos(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def opens(path: Path) -> bool:
    """Whether Pillow recognises the file (its header only: fast; a truncated photo still passes)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return bool(image.format)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


def _class_name(by_class: dict[str, list[Path]], skipped: list[Path]) -> dict[str, list[Path]]:
    """The photos Pillow opens; the others go to ``skipped``."""
    kept: dict[str, list[Path]] = {}
    for name, photos in by_class.items():
        kept[name] = []
        for photo in photos:
            (kept[name] if opens(photo) else skipped).append(photo)
    return kept


def _class_folders(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}


@dataclass(frozen=True)
class Split:
    """Which photos (paths relative to the data folder) are in which split, and how that was decided."""

    how: str
    files: dict[str, list[str]]  # split -> relative paths
    skipped: tuple[str, ...] = ()  # files with a photo's name that Pillow cannot open

    def to_json(self) -> str:
        return json.dumps({"how": self.how, **self.files, "skipped": list(self.skipped)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Split:
        data = json.loads(text)
        return cls(data.pop("how"), {name: list(data.get(name, [])) for name in SPLIT_FOLDERS},
                   tuple(data.get("skipped", ())))

    @classmethod
    def from_file(cls, path: Path) -> Split:
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, AttributeError) as err:
            raise DatasetError(f"{path}: not a split record ({err})") from None


def stratified(by_class: dict[str, list[Path]], ratios: tuple[float, float, float], seed: int,
               ) -> dict[str, dict[str, list[Path]]]:
    """Split each class's photos (sorted, then shuffled by ``seed``) into train / val / test by ``ratios``;
    a class with 3 photos or more gets at least one in each."""
    if len(ratios) != 3 or min(ratios) < 0 or not 0.99 <= sum(ratios) <= 1.01:
        raise DatasetError(f"split ratios {ratios}: expected three non-negative numbers summing to 1")
    out: dict[str, dict[str, list[Path]]] = {name: {} for name in SPLIT_FOLDERS}
    for index, (name, photos) in enumerate(sorted(by_class.items())):
        order = np.random.default_rng((seed, index)).permutation(len(photos))
        shuffled = [photos[i] for i in order]
        n = len(shuffled)
        n_val, n_test = round(ratios[1] * n), round(ratios[2] * n)
        if n >= 3:
            n_val, n_test = max(n_val, 1 if ratios[1] else 0), max(n_test, 1 if ratios[2] else 0)
        out["val"][name] = shuffled[:n_val]
        out["test"][name] = shuffled[n_val:n_val + n_test]
        out["train"][name] = shuffled[n_val + n_test:]
    return out


def choose_split(root: Path, ratios: tuple[float, float, float] = DEFAULT_RATIOS,
                 seed: int = DEFAULT_SEED) -> Split:
    """The split of a class-folder dataset: its own split folders, or a seeded stratified split."""
    suffixes = image_suffixes()
    folders = _class_folders(root)
    skipped: list[Path] = []
    if "train" in folders and "test" in folders:
        parts = {name: _class_name({c: _photos(p, suffixes) for c, p in _class_folders(folders[name]).items()},
                                 skipped) for name in SPLIT_FOLDERS if name in folders}
        how = "the data's own train/, val/ and test/ folders"
        if "val" not in parts:
            carved = stratified(parts["train"], (1 - ratios[1], ratios[1], 0.0), seed)
            parts["train"], parts["val"] = carved["train"], carved["val"]
            how = f"the data's own train/ and test/ folders; val drawn from train/ ({ratios[1]:.0%}, seed {seed})"
    else:
        parts = stratified(_class_name({c: _photos(p, suffixes) for c, p in folders.items()}, skipped), ratios, seed)
        how = (f"stratified per class, seed {seed}: train {ratios[0]:.0%}, val {ratios[1]:.0%}, "
               f"test {ratios[2]:.0%}")
    files = {name: [str(p.relative_to(root)) for cls in sorted(part) for p in part[cls]]
             for name, part in parts.items()}
    return Split(how, files, tuple(str(p.relative_to(root)) for p in skipped))


def class_of(relative: str, split_folders: bool) -> str:
    """The class folder of a photo, from its path relative to the data folder."""
    parts = Path(relative).parts
    return parts[1] if split_folders else parts[0]


def load_class_folders(root: Path, split: Split | None = None, ratios: tuple[float, float, float] = DEFAULT_RATIOS,
                       seed: int = DEFAULT_SEED) -> tuple[Flowers102, Split]:
    """Read a class-folder dataset with ``split`` (e.g. a run's ``split.json``) or a new one.

    Raises:
        DatasetError: fewer than 2 classes, a split without photos, or a photo of the split missing.
    """
    split = split or choose_split(root, ratios, seed)
    split_folders = (root / "train").is_dir() and (root / "test").is_dir()
    folders = sorted({class_of(f, split_folders) for files in split.files.values() for f in files},
                     key=lambda f: (class_name(f).casefold(), f))
    if len(folders) < 2:
        raise DatasetError(f"{root}: {len(folders)} class folder(s) with photos; a classifier needs 2 or more")
    names = [class_name(f) for f in folders]
    if len(set(names)) != len(names):
        raise DatasetError(f"{root}: two class folders give the same name once '_' is read as a space")
    index = {f: i for i, f in enumerate(folders)}
    image_id = 0
    samples: dict[str, tuple[Sample, ...]] = {}
    for name in SPLIT_FOLDERS:
        found = []
        for relative in split.files.get(name, []):
            path = root / relative
            if not path.is_file():
                raise DatasetError(f"{relative} is in the run's {SPLIT_FILE} but not in {root}")
            image_id += 1
            found.append(Sample(path, index[class_of(relative, split_folders)], image_id))
        samples[name] = tuple(found)
    for name in ("train", "test"):
        if not samples[name]:
            raise DatasetError(f"{root}: no photos in the {name} split")
    return Flowers102(root, tuple(names), samples["train"], samples["val"], samples["test"]), split


def data_report(dataset: Flowers102, split: Split) -> tuple[list[str], list[str]]:
    """(report lines, problems): the layout and split, photos per class and split, duplicate photos across
    splits (same bytes), classes too small to train, extreme imbalance. Unreadable files are the caller's
    (they need a full decode)."""
    lines = [f"layout: class folders; split: {split.how}", f"classes: {dataset.num_classes}",
             f"{'class':30s} {'train':>6s} {'val':>6s} {'test':>6s}"]
    counts = np.zeros((dataset.num_classes, 3), np.int64)
    for column, name in enumerate(SPLIT_FOLDERS):
        for sample in dataset.split(name):
            counts[sample.label, column] += 1
    for name, row in zip(dataset.class_names, counts):
        lines.append(f"{name[:30]:30s} {row[0]:6d} {row[1]:6d} {row[2]:6d}")
    lines.append(f"{'all':30s} {counts[:, 0].sum():6d} {counts[:, 1].sum():6d} {counts[:, 2].sum():6d}")
    problems = [f"{name}: not a photo Pillow can open (left out)" for name in split.skipped]
    seen: dict[str, tuple[str, Path]] = {}
    for name in SPLIT_FOLDERS:
        for sample in dataset.split(name):
            digest = hashlib.sha256(sample.path.read_bytes()).hexdigest()
            first = seen.setdefault(digest, (name, sample.path))
            if first[0] != name:
                problems.append(f"duplicate photo across splits: {sample.path.relative_to(dataset.root)} ({name}) "
                                f"= {first[1].relative_to(dataset.root)} ({first[0]})")
    small = [n for n, row in zip(dataset.class_names, counts) if row[0] < MIN_TRAIN]
    if small:
        problems.append(f"too few training photos (under {MIN_TRAIN}) to train well: {', '.join(small)}")
    train = counts[:, 0]
    if train.min() and train.max() / train.min() > IMBALANCE:
        problems.append(f"extreme imbalance: {dataset.class_names[int(train.argmax())]} has {train.max()} training "
                        f"photos, {dataset.class_names[int(train.argmin())]} {train.min()}")
    return lines, problems
