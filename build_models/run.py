"""A training run's folder: train, save, evaluate; and reload a run later."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
from flowercam.errors import FlowercamError
from flowercam.model.files import write_atomically
from flowercam.model.preprocess import Preprocess

from .console import phase
from .data import Flowers102
from .distribute import Cluster
from .evaluate import plot_confusion, plot_history, split_metrics, write_metrics
from .fitting import predict_batches
from .folders import SPLIT_FILE
from .images import labels_of, load_arrays
from .presets import TrainConfig
from .samples import evaluation_samples
from .train import train

MODEL_FILE = "model.keras"


class RunFolderError(FlowercamError, ValueError):
    """The run folder holds another run."""


def start_run(config: TrainConfig, dataset: Flowers102, run_dir: Path, cluster: Cluster | None = None) -> dict | None:
    """Train (or resume) a run and evaluate it; returns its metrics. Under a cluster, a worker other than the
    chief trains its part, writes only to its scratch folder and returns None."""
    work = cluster.write_dir(run_dir) if cluster else run_dir
    work.mkdir(parents=True, exist_ok=True)
    config_path = work / "config.json"
    if config_path.exists() and TrainConfig.from_file(config_path) != config:
        raise RunFolderError(f"{work} holds a run with another config; use another --out")
    config_path.write_text(config.to_json())
    (work / "classes.json").write_text(json.dumps(list(dataset.class_names)))
    if dataset.split_record is not None and not (work / SPLIT_FILE).exists():
        (work / SPLIT_FILE).write_text(dataset.split_record)  # later commands on this run use the same split
    t0 = time.perf_counter()
    model = train(config, dataset, run_dir, cluster)
    train_s = time.perf_counter() - t0
    if cluster and not cluster.is_chief:
        return None
    write_atomically(run_dir / MODEL_FILE, model.save)
    metrics = evaluate_run(run_dir, dataset, model)
    metrics["train_wall_s"] = round(train_s, 1)
    write_metrics(run_dir, metrics)
    return metrics


def load_run(run_dir: Path) -> tuple[TrainConfig, keras.Model]:
    """The config and trained Keras model of a run folder."""
    from . import augment, schedules  # noqa: F401  (register custom objects)
    from .backbones import paper  # noqa: F401
    from .losses import SmoothedSparseCrossentropy

    config = TrainConfig.from_file(run_dir / "config.json")
    # "loss": runs saved before the loss became a registered class
    model = keras.models.load_model(run_dir / MODEL_FILE, compile=False,
                                    custom_objects={"loss": SmoothedSparseCrossentropy})
    return config, model


def run_logits(run_dir: Path, model: keras.Model, dataset: Flowers102, split: str,
               config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of a split (cached in the run folder as ``logits_<split>.npz``)."""
    path = run_dir / f"logits_{split}.npz"
    if path.exists():
        data = np.load(path)
        return data["logits"], data["labels"]
    samples = evaluation_samples(config, dataset, split)
    pre = Preprocess(config.size, config.crop_fraction)
    logits = predict_batches(model, load_arrays(samples, pre, f"loading {split}"), description=f"evaluating {split}")
    labels = labels_of(samples)
    np.savez(path, logits=logits, labels=labels)
    return logits, labels


def evaluate_run(run_dir: Path, dataset: Flowers102, model: keras.Model | None = None) -> dict:
    """Recompute a run's metrics on val and test; writes metrics.json and the PNGs."""
    config = TrainConfig.from_file(run_dir / "config.json")
    if model is None:
        config, model = load_run(run_dir)
    metrics = {"preset": config.preset, "backbone": config.backbone, "protocol": config.protocol,
               "size": config.size, "params": int(model.count_params())}
    with phase("evaluation: val and test splits"):
        for split in ("val", "test"):
            logits, labels = run_logits(run_dir, model, dataset, split, config)
            metrics[split] = split_metrics(logits, labels, dataset.class_names)
            plot_confusion(logits, labels, run_dir / f"confusion_{split}.png",
                           f"{config.preset} ({config.protocol}) {split}: top-1 {metrics[split]['accuracy']:.2%}")
    if config.protocol == "trainval":
        metrics["val"]["note"] = "val is part of the training data under the trainval protocol"
    timings = run_dir / "timings.json"
    if timings.exists():
        metrics["timings"] = json.loads(timings.read_text())
    plot_history(run_dir)
    write_metrics(run_dir, metrics)
    return metrics
