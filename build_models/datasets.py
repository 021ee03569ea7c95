"""Which dataset a folder holds (the Oxford 102 layout, or a folder of class folders) and the run folder's note
of the data it was trained on: the one entry point above :mod:`build_models.data` and :mod:`build_models.folders`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .data import Flowers102, load_flowers102, resolve_root
from .folders import DEFAULT_RATIOS, DEFAULT_SEED, SPLIT_FILE, Split, load_class_folders

DATA_RECORD = "data.json"  # in a run folder: the data it was trained on


def record_data(run: Path, data: str | Path | None) -> None:
    """Note in the run folder which data it is trained on (the later commands default to it)."""
    root = resolve_root(data)
    run.mkdir(parents=True, exist_ok=True)
    (run / DATA_RECORD).write_text(json.dumps({"data": str(root.resolve())}) + "\n")


def recorded_data(run: Path | None) -> Path | None:
    """The data a run was trained on, if it recorded it and it is still there."""
    record = run / DATA_RECORD if run is not None else None
    if record is None or not record.is_file():
        return None
    try:
        return Path(json.loads(record.read_text())["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_oxford_layout(root: Path) -> bool:
    """The official layout: ``imagelabels.mat``, ``setid.mat``, ``jpg/`` or ``102flowers.tgz``."""
    return any((root / name).exists() for name in ("imagelabels.mat", "setid.mat", "jpg", "102flowers.tgz"))


def load_dataset(data: str | Path | None = None, run: Path | None = None,
                 ratios: tuple[float, float, float] | None = None, seed: int | None = None) -> Flowers102:
    """The Oxford layout, or a folder of class folders (see :mod:`build_models.folders`) split as the run
    folder ``run`` recorded it, else by ``ratios`` and ``seed``."""
    root = resolve_root(data)
    if is_oxford_layout(root):
        return load_flowers102(root)
    recorded = run / SPLIT_FILE if run is not None else None
    split = Split.from_file(recorded) if recorded is not None and recorded.is_file() else None
    dataset, split = load_class_folders(root, split, ratios or DEFAULT_RATIOS,
                                        DEFAULT_SEED if seed is None else seed)
    return replace(dataset, split_record=split.to_json())
