"""A small dataset in the official Oxford 102 format, for tests and demos.

Real JPEG files (each class a distinct colour with texture and noise, so a tiny model
can learn it), real ``.mat`` files written with scipy, optionally a real ``.tgz``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from .data import image_name

PALETTE = ((220, 40, 60), (250, 200, 30), (120, 60, 200), (40, 160, 70), (240, 120, 200), (30, 90, 220),
           (250, 140, 20), (200, 200, 200))


def class_image(label: int, rng: np.random.Generator, size: tuple[int, int] = (80, 60)) -> Image.Image:
    """A textured image whose dominant colour says its class. size is (width, height)."""
    width, height = size
    base = np.array(PALETTE[label % len(PALETTE)], dtype=np.float64)
    yy, xx = np.mgrid[0:height, 0:width]
    stripes = np.sin((xx + yy * (1 + label % 3)) / (3 + label)) * 25
    noise = rng.normal(0, 12, (height, width, 3))
    pixels = base + stripes[..., None] + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def write_dataset(root: str | Path, num_classes: int = 3, per_class: int = 8, split: tuple[int, int] = (2, 2),
                  size: tuple[int, int] = (80, 60), as_tgz: bool = False, seed: int = 0) -> Path:
    """Write a dataset: per class ``split[0]`` train, ``split[1]`` val, the rest test.

    Ids are shuffled across classes as in the official files. Returns ``root``.
    """
    from scipy.io import savemat

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(1, num_classes + 1), per_class)
    rng.shuffle(labels)
    jpg = root / "jpg"
    jpg.mkdir(exist_ok=True)
    for i, label in enumerate(labels, start=1):
        w, h = size if i % 2 else size[::-1]  # both orientations
        class_image(int(label) - 1, rng, (w, h)).save(jpg / image_name(i), quality=90)
    ids = {"trnid": [], "valid": [], "tstid": []}
    for label in range(1, num_classes + 1):
        members = (np.flatnonzero(labels == label) + 1).tolist()
        ids["trnid"] += members[: split[0]]
        ids["valid"] += members[split[0]: split[0] + split[1]]
        ids["tstid"] += members[split[0] + split[1]:]
    savemat(root / "imagelabels.mat", {"labels": labels[np.newaxis].astype(np.uint8)})
    savemat(root / "setid.mat", {k: np.array(sorted(v), dtype=np.uint16)[np.newaxis] for k, v in ids.items()})
    (root / "classes.txt").write_text("".join(f"synthetic {k}\n" for k in range(1, num_classes + 1)))
    if as_tgz:
        with tarfile.open(root / "102flowers.tgz", "w:gz") as tar:
            tar.add(jpg, arcname="jpg")
        for path in jpg.iterdir():
            path.unlink()
        jpg.rmdir()
    return root


def write_class_folders(root: str | Path, classes: tuple[str, ...], per_class: int = 10,
                        split_folders: tuple[int, int, int] | None = None, size: tuple[int, int] = (80, 60),
                        seed: int = 0) -> Path:
    """Write ``root/<class>/*.jpg|png`` (``per_class`` photos each), or with ``split_folders=(train, val, test)``
    counts ``root/train/<class>/…`` etc. Returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        places = [root / name] * per_class if split_folders is None else \
            [root / split / name for split, n in zip(("train", "val", "test"), split_folders) for _ in range(n)]
        for i, folder in enumerate(places):
            folder.mkdir(parents=True, exist_ok=True)
            image = class_image(label, rng, size if i % 2 else size[::-1])
            image.save(folder / f"{name[:3]}_{i:03d}{'.png' if i % 3 == 0 else '.jpg'}")
    return root
