"""Which photos a run trains, validates and is evaluated on (its protocol and subsampling)."""

from __future__ import annotations

from .data import Flowers102, Sample
from .presets import TrainConfig


def training_samples(config: TrainConfig, dataset: Flowers102) -> tuple[list[Sample], list[Sample]]:
    """(training samples, validation samples) under the config's protocol and subsampling."""
    train = list(dataset.split("trainval" if config.protocol == "trainval" else "train"))
    val = list(dataset.val)
    if config.max_per_class:
        train, val = _per_class(train, config.max_per_class), _per_class(val, config.max_per_class)
    return train, val


def evaluation_samples(config: TrainConfig, dataset: Flowers102, split: str) -> list[Sample]:
    """The samples a run is evaluated on: the split, with val subsampled like training when asked."""
    if split == "val" and config.max_per_class:
        return training_samples(config, dataset)[1]
    return list(dataset.split(split))


def _per_class(samples: list[Sample], limit: int) -> list[Sample]:
    counts: dict[int, int] = {}
    kept = []
    for s in samples:
        if counts.get(s.label, 0) < limit:
            kept.append(s)
            counts[s.label] = counts.get(s.label, 0) + 1
    return kept
