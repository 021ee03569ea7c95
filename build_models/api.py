"""The Python API, four calls from class folders to a device model (what Model Maker users look for)::

    from build_models import load_data, train, evaluate, export

    data = load_data("my_flowers/")              # class folders (or the Oxford layout), split 70/15/15
    run = train(data, "lite0", "runs/mine")      # two phases on cached features; returns the run folder
    print(evaluate(run, data)["test"]["accuracy"])
    print(export(run, data)["models"]["int8"])   # float32, float16, int8 .tflite with sidecars in RUN/export

Each is the command of the same name (``build-models train`` ...), without the command line.
"""

from __future__ import annotations

from pathlib import Path

from .data import Flowers102
from .datasets import load_dataset, record_data


def load_data(data: str | Path, run: str | Path | None = None) -> Flowers102:
    """A dataset: the Oxford layout, or a folder of class folders (split as ``run`` recorded it, else 70/15/15)."""
    return load_dataset(data, Path(run) if run else None)


def train(dataset: Flowers102, preset: str = "lite0", run: str | Path | None = None, data: str | Path | None = None,
          **overrides) -> Path:
    """Train ``preset`` (``overrides``: size, views, phase1_epochs, ... as the command's options) into the run
    folder ``run`` (default ``runs/PRESET-PROTOCOL``); resumes a run folder that exists. Returns the folder."""
    from .presets import get_preset
    from .run import start_run

    config = get_preset(preset, **overrides)
    run_dir = Path(run) if run else Path("runs") / f"{config.preset}-{config.protocol}"
    start_run(config, dataset, run_dir)
    if data is not None:
        record_data(run_dir, data)
    return run_dir


def evaluate(run: str | Path, dataset: Flowers102) -> dict:
    """Val and test metrics of a run (also written to RUN/metrics.json, with the confusion PNGs)."""
    from .run import evaluate_run

    return evaluate_run(Path(run), dataset)


def export(run: str | Path, dataset: Flowers102, out: str | Path | None = None, **options) -> dict:
    """The run as TFLite float32, float16 and int8 (full-integer) with sidecars, measured; returns the report.
    ``options``: calibration_images, edgetpu, rule (an :class:`~build_models.export.UncertainRule`), ..."""
    from .export import UncertainRule, export_run

    options.setdefault("rule", UncertainRule(similarity=True))
    return export_run(Path(run), dataset, Path(out) if out else None, **options)
