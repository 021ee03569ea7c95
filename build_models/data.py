"""The Oxford 102 Category Flower Dataset in its official layout, read and validated (the entry point that
also reads a folder of class folders is :func:`build_models.datasets.load_dataset`).

Layout: ``102flowers.tgz`` (holding ``jpg/``) or the extracted ``jpg/`` folder, plus
``imagelabels.mat`` (``labels``: 1×N, classes 1..102) and ``setid.mat`` (``trnid``,
``valid``, ``tstid``: 1-based image ids), and optionally ``classes.txt`` (one name a line)
and an md5 list (``originals.md5``: ``<md5>  image_00001.jpg``).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flowercam.errors import FlowercamError

SPLITS = {"train": "trnid", "val": "valid", "test": "tstid"}
ENV_VAR = "FLOWERCAM_DATA"
CACHE_ENV_VAR = "FLOWERCAM_CACHE"


class DatasetError(FlowercamError, ValueError):
    """The dataset is missing or inconsistent; the message says precisely what is wrong."""


@dataclass(frozen=True)
class Sample:
    """One photo: its file, 0-based class and 1-based official image id."""

    path: Path
    label: int
    image_id: int


@dataclass(frozen=True)
class Flowers102:
    """A dataset in three splits (train, val, test) with its class names: the Oxford 102 layout read here, or a
    folder of class folders split by :mod:`build_models.folders`."""

    root: Path
    class_names: tuple[str, ...]
    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    test: tuple[Sample, ...]
    problems: tuple[str, ...] = field(default=())
    split_record: str | None = None  # class folders: the split as JSON, for the run folder (folders.SPLIT_FILE)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> tuple[Sample, ...]:
        """A split by name: ``train``, ``val``, ``test`` or ``trainval``."""
        if name == "trainval":
            return self.train + self.val
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid: train, val, test, trainval")
        return getattr(self, name)


def image_name(image_id: int) -> str:
    return f"image_{image_id:05d}.jpg"


def resolve_root(data: str | Path | None) -> Path:
    """The data folder from the argument, else ``$FLOWERCAM_DATA``."""
    chosen = data or os.environ.get(ENV_VAR)
    if not chosen:
        raise DatasetError(f"no dataset given: pass --data DIR or set {ENV_VAR}")
    root = Path(chosen).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    return root


def _load_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    if not path.is_file():
        raise DatasetError(f"missing {path.name} in {path.parent}")
    try:
        mat = loadmat(path)
    except Exception as err:
        raise DatasetError(f"{path.name} is not a readable .mat file ({err})") from None
    out = {}
    for key in keys:
        if key not in mat:
            raise DatasetError(f"{path.name} has no variable {key!r}")
        value = np.asarray(mat[key])
        if value.ndim != 2 or value.shape[0] != 1:
            raise DatasetError(f"{path.name}:{key} has shape {value.shape}, expected (1, N)")
        out[key] = value[0].astype(np.int64)
    return out


def extract_tgz(tgz: Path) -> Path:
    """Extract ``jpg/`` from the official tarball into a cache folder (once); returns it."""
    cache = Path(os.environ.get(CACHE_ENV_VAR, Path.home() / ".cache" / "flowercam"))
    stat = tgz.stat()
    target = cache / f"{tgz.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    done = target / ".complete"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(tgz) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("jpg/")]
                tar.extractall(target, members=members, filter="data")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DatasetError(f"{tgz.name} is not a readable tarball ({err})") from None
        done.touch()
    return target / "jpg"


def image_folder(root: Path) -> Path:
    """``root/jpg``, or ``jpg/`` extracted from ``root/102flowers.tgz``."""
    if (root / "jpg").is_dir():
        return root / "jpg"
    tgz = root / "102flowers.tgz"
    if tgz.is_file():
        return extract_tgz(tgz)
    raise DatasetError(f"no jpg/ folder and no 102flowers.tgz in {root}")


def read_class_names(root: Path, num_classes: int) -> tuple[str, ...]:
    """Names from ``classes.txt`` when present and complete, else ``class 1`` … ``class N``."""
    path = root / "classes.txt"
    if not path.is_file():
        return tuple(f"class {k}" for k in range(1, num_classes + 1))
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) != num_classes:
        raise DatasetError(f"classes.txt has {len(names)} names, labels use {num_classes} classes")
    return tuple(names)


def load_flowers102(data: str | Path | None = None) -> Flowers102:
    """Read the official splits. Labels are 0-based; the file of every id must exist.

    Raises:
        DatasetError: a missing or malformed file, ids without a file, overlapping or
            incomplete splits.
    """
    root = resolve_root(data)
    labels = _load_mat(root / "imagelabels.mat", ("labels",))["labels"]
    split_ids = _load_mat(root / "setid.mat", tuple(SPLITS.values()))
    problems = check_split_ids(split_ids, len(labels))
    if problems:
        raise DatasetError("; ".join(problems))
    if labels.min() < 1:
        raise DatasetError(f"imagelabels.mat: class {labels.min()} found, classes start at 1")
    num_classes = int(labels.max())
    folder = image_folder(root)
    missing = [i for i in range(1, len(labels) + 1) if not (folder / image_name(i)).is_file()]
    if missing:
        shown = ", ".join(image_name(i) for i in missing[:5])
        raise DatasetError(f"{len(missing)} image ids without a file in {folder}: {shown}"
                           + (" …" if len(missing) > 5 else ""))
    splits = {
        name: tuple(Sample(folder / image_name(i), int(labels[i - 1]) - 1, int(i)) for i in split_ids[key])
        for name, key in SPLITS.items()
    }
    return Flowers102(root, read_class_names(root, num_classes), **splits)


def check_split_ids(split_ids: dict[str, np.ndarray], num_images: int) -> list[str]:
    """Problems with the split ids: out of range, duplicated, overlapping, or not covering 1..N."""
    problems = []
    seen: dict[int, str] = {}
    for key, ids in split_ids.items():
        bad = ids[(ids < 1) | (ids > num_images)]
        if bad.size:
            problems.append(f"setid.mat:{key} has ids outside 1..{num_images}: {bad[:5].tolist()}")
        if len(set(ids.tolist())) != len(ids):
            problems.append(f"setid.mat:{key} repeats ids")
        overlap = [i for i in ids.tolist() if seen.get(i, key) != key]
        if overlap:
            problems.append(f"setid.mat: image id {overlap[0]} is in both {seen[overlap[0]]} and {key}"
                            + (f" ({len(overlap)} ids overlap)" if len(overlap) > 1 else ""))
        seen.update(dict.fromkeys(ids.tolist(), key) | {i: seen[i] for i in overlap})
    uncovered = sorted(set(range(1, num_images + 1)) - set(seen))
    if uncovered:
        problems.append(f"setid.mat: {len(uncovered)} of ids 1..{num_images} are in no split "
                        f"(first: {uncovered[:5]})")
    return problems


def check_images(samples: list[Sample], progress: Callable[[int], None] | None = None, root: Path | None = None,
                 ) -> tuple[list[str], tuple[int, int, int, int]]:
    """Decode every image fully. Returns (problems naming the image id, (min w, min h, max w, max h)); with
    ``root``, photos are named by their path under it (class folders) instead."""
    from PIL import Image

    problems = []
    widths, heights = [], []
    for sample in samples:
        try:
            with Image.open(sample.path) as image:
                image.load()
                widths.append(image.width)
                heights.append(image.height)
        except Exception as err:
            name = str(sample.path.relative_to(root)) if root else f"image id {sample.image_id} ({sample.path.name})"
            problems.append(f"{name}: corrupt or truncated {'photo' if root else 'JPEG'} "
                            f"({' '.join(str(err).split())[:120]})")
        if progress:
            progress(1)
    sizes = (min(widths), min(heights), max(widths), max(heights)) if widths else (0, 0, 0, 0)
    return problems, sizes


def check_md5(samples: list[Sample], md5_file: Path) -> list[str]:
    """Compare files with an ``originals.md5`` list (``<md5>  <file name>``)."""
    expected = {}
    for line in md5_file.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            expected[Path(parts[1]).name] = parts[0].lower()
    problems = []
    for sample in samples:
        want = expected.get(sample.path.name)
        if want is None:
            problems.append(f"image id {sample.image_id}: not listed in {md5_file.name}")
        elif hashlib.md5(sample.path.read_bytes()).hexdigest() != want:
            problems.append(f"image id {sample.image_id} ({sample.path.name}): md5 differs from {md5_file.name}")
    return problems
