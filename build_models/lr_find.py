"""The LR range test (Smith 2017) on the frozen backbone's pooled features, with its plot."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from flowercam.model.preprocess import Preprocess

from .backbones import get_backbone
from .data import Flowers102
from .fitting import predict_batches
from .heads import build_head
from .images import labels_of, load_arrays
from .losses import SmoothedSparseCrossentropy
from .presets import TrainConfig
from .samples import training_samples
from .schedules import lr_range_test, suggest_band


def run_lr_find(config: TrainConfig, dataset: Flowers102, out: Path, steps: int = 300) -> tuple[float, float]:
    """Run the range test for the head of ``config``; writes lr_range_test.png/json; returns (base, max)."""
    out.mkdir(parents=True, exist_ok=True)
    spec = get_backbone(config.backbone)
    train, _ = training_samples(config, dataset)
    images = load_arrays(train, Preprocess(config.size, config.crop_fraction), "loading train")
    features = spec.build(config.size, config.weights)
    pooled = predict_batches(keras.Sequential([features, keras.layers.GlobalAveragePooling2D()]), images,
                             description="features")
    head = build_head(spec, dataset.num_classes, pooled.shape[1])
    loss = SmoothedSparseCrossentropy(dataset.num_classes, config.label_smoothing)
    lrs, losses = lr_range_test(head, pooled, labels_of(train), steps=steps, batch_size=config.batch_size,
                                optimizer=config.optimizer, loss=loss)
    band = suggest_band(lrs, losses)
    _plot(lrs, losses, band, out / "lr_range_test.png", config.preset)
    (out / "lr_range_test.json").write_text(json.dumps(
        {"preset": config.preset, "lr": lrs.tolist(), "loss": losses.tolist(), "base_lr": band[0],
         "max_lr": band[1]}, indent=1))
    return band


def _plot(lrs: np.ndarray, losses: np.ndarray, band: tuple[float, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.semilogx(lrs, losses)
    ax.axvspan(*band, color="tab:green", alpha=0.2, label=f"CLR band {band[0]:.1e} – {band[1]:.1e}")
    ax.set(xlabel="learning rate (log)", ylabel="smoothed training loss", title=f"LR range test: {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
