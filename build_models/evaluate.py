"""Metrics and plots of a run: accuracy, loss, per-class precision/recall/F1, confusion matrix, curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from flowercam.model.scores import softmax
from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support


def split_metrics(logits: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """Top-1/top-5 accuracy, loss and per-class precision/recall/F1 for one split."""
    probs = softmax(logits)
    pred = probs.argmax(1)
    k = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=k, zero_division=0)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    return {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()),
        "top5_accuracy": float((top5 == labels[:, None]).any(1).mean()),
        "loss": float(log_loss(labels, probs, labels=k)),
        "per_class": [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
                       "support": int(s)} for name, p, r, f, s in zip(class_names, precision, recall, f1, support)],
    }


def plot_confusion(logits: np.ndarray, labels: np.ndarray, path: Path, title: str) -> None:
    """Row-normalized confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = logits.shape[1]
    cm = confusion_matrix(labels, logits.argmax(1), labels=list(range(n))).astype(np.float64)
    cm /= np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(9, 8))
    im = ax.imshow(cm, cmap="viridis", vmin=0, vmax=1)
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_history(run_dir: Path) -> Path | None:
    """Training curves (loss and accuracy, train and val) of both phases as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    for phase in ("phase1", "phase2"):
        path = run_dir / f"history_{phase}.csv"
        if path.exists():
            rows += [dict(r, phase=phase) for r in csv.DictReader(path.open())]
    if not rows:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(1, len(rows) + 1)
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(x, [float(r[key]) for r in rows], label=f"train {key}")
        if "val_" + key in rows[0]:
            ax.plot(x, [float(r["val_" + key]) for r in rows], label=f"val {key}")
        boundary = sum(r["phase"] == "phase1" for r in rows)
        ax.axvline(boundary + 0.5, color="grey", ls=":", label="phase 2 starts")
        ax.set(xlabel="epoch", title=key)
        ax.legend()
    fig.tight_layout()
    out = run_dir / "training_curves.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    path = run_dir / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return path
