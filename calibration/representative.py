"""The representative-dataset generator for int8 post-training quantization.

A class-balanced, seeded sample of training images, optionally with a folder of the
user's own images (e.g. frames from the camera the model will run on), all through
exactly the device's preprocessing (``flowercam.model.preprocess``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from flowercam.errors import FlowercamError
from flowercam.model.preprocess import ImageError, Preprocess, find_images


class CalibrationError(FlowercamError, FileNotFoundError):
    """The calibration photos asked for are not there."""


def balanced_sample(labels: Sequence[int], n: int, seed: int = 0) -> list[int]:
    """Indices of ``n`` items spread evenly over classes (round-robin over shuffled classes).

    Deterministic for a seed; takes every item when ``n`` >= len(labels).
    """
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(i)
    queues = [list(rng.permutation(idx)) for _, idx in sorted(by_class.items())]
    chosen: list[int] = []
    while len(chosen) < min(n, len(labels)):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(int(queue.pop()))
    return sorted(chosen)


def representative_paths(paths: Sequence[Path], labels: Sequence[int], n: int, seed: int = 0,
                         extra_folder: Path | None = None) -> list[Path]:
    """The calibration files: a balanced sample of ``paths`` plus every image in ``extra_folder``."""
    chosen = [Path(paths[i]) for i in balanced_sample(labels, n, seed)]
    if extra_folder is not None:
        if not Path(extra_folder).is_dir():
            raise CalibrationError(f"calibration folder not found: {extra_folder}")
        chosen += find_images([extra_folder])
    return chosen


class RepresentativeDataset:
    """A generator factory for ``TFLiteConverter.representative_dataset``: called, it yields
    ``[(1, size, size, 3) float32 array of raw 0-255 pixels]`` for each readable file, and counts what it used
    (``used``; ``skipped``: the unreadable files) so that the sidecar states the photos that calibrated the model."""

    def __init__(self, files: Sequence[Path], spec: Preprocess) -> None:
        self.files, self.spec = list(files), spec
        self.used = self.skipped = 0

    def __call__(self) -> Iterator[list[np.ndarray]]:
        self.used = self.skipped = 0
        for path in self.files:
            try:
                array = self.spec(path)
            except ImageError:
                self.skipped += 1
                continue
            self.used += 1
            yield [array[np.newaxis].astype(np.float32)]


def representative_dataset(files: Sequence[Path], spec: Preprocess) -> RepresentativeDataset:
    """The representative dataset of ``files`` through the device's preprocessing ``spec``."""
    return RepresentativeDataset(files, spec)
