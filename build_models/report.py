"""Error analysis of a run: per-class table, worst classes, confused pairs, a gallery of mistakes,
and single-image explanation figures (Grad-CAM, LIME, nearest training images), with a Markdown index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flowercam.classifier import softmax
from flowercam.preprocess import Preprocess

from .backbones import get_backbone
from .data import Flowers102, Sample
from .explain import Embeddings, gradcam, lime_explanation, overlay
from .images import labels_of, load_arrays
from .run import load_run, run_logits


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_small_png(fig, path: Path, dpi: int) -> None:
    """Save a figure as a 256-colour PNG (photos in figures make full-colour PNGs large)."""
    from PIL import Image

    fig.savefig(path, dpi=dpi)
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def train_embeddings(run_dir: Path, model, dataset: Flowers102, config) -> tuple[Embeddings, list[Sample]]:
    """Embeddings of the run's training images, cached in the run folder."""
    from .train import training_samples

    train, _ = training_samples(config, dataset)
    pre = Preprocess(config.size, config.crop_fraction)
    emb = Embeddings.load_or_compute(run_dir / "embeddings_train.npz", model,
                                     lambda: load_arrays(train, pre, "loading train"), labels_of(train),
                                     [s.path.name for s in train])
    return emb, train


def explain_image(run_dir: Path, dataset: Flowers102, image_path: Path, out: Path, true_label: int | None = None,
                  lime_samples: int = 300) -> dict:
    """Grad-CAM, LIME (predicted and true class) and nearest training images for one photo; PNGs + summary."""
    config, model = load_run(run_dir)
    spec = get_backbone(config.backbone)
    pre = Preprocess(config.size, config.crop_fraction)
    image = pre(image_path)
    probs = softmax(model.predict(image[np.newaxis].astype(np.float32), verbose=0))[0]
    predicted = int(probs.argmax())
    names = dataset.class_names
    out.mkdir(parents=True, exist_ok=True)
    stem = image_path.stem
    plt = _plt()
    classes = [predicted] + ([true_label] if true_label is not None and true_label != predicted else [])
    fig, axes = plt.subplots(1, 1 + 2 * len(classes), figsize=(4 * (1 + 2 * len(classes)), 4.4))
    axes[0].imshow(image)
    axes[0].set_title(f"{stem}\ntrue: {names[true_label] if true_label is not None else '?'}", fontsize=9)
    explanation = lime_explanation(model, image, tuple(classes), lime_samples)
    from skimage.segmentation import mark_boundaries

    for i, cls in enumerate(classes):
        heat, _ = gradcam(model, spec.gradcam, image, cls)
        axes[1 + 2 * i].imshow(overlay(image, heat))
        axes[1 + 2 * i].set_title(f"Grad-CAM: {names[cls]}\np={probs[cls]:.3f}", fontsize=9)
        temp, mask = explanation.get_image_and_mask(cls, positive_only=True, num_features=5, hide_rest=False)
        axes[2 + 2 * i].imshow(mark_boundaries(temp / 255.0, mask))
        axes[2 + 2 * i].set_title(f"LIME top 5 superpixels: {names[cls]}\np={probs[cls]:.3f}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    save_small_png(fig, out / f"{stem}_explained.png", dpi=80)
    plt.close(fig)
    emb, train = train_embeddings(run_dir, model, dataset, config)
    from .explain import embedding_model

    query = embedding_model(model).predict(image[np.newaxis].astype(np.float32), verbose=0)[0]
    neighbours = {"euclidean_predicted_class": emb.nearest(query, 3, "euclidean", within_class=predicted),
                  "euclidean_all": emb.nearest(query, 3, "euclidean"), "cosine_all": emb.nearest(query, 3, "cosine")}
    _neighbour_figure(image, stem, neighbours, train, names, pre, out / f"{stem}_neighbours.png")
    top3 = np.argsort(-probs)[:3]
    return {"image": str(image_path), "predicted": names[predicted],
            "true": names[true_label] if true_label is not None else None,
            "top3": [(names[i], round(float(probs[i]), 4)) for i in top3],
            "neighbours": {k: [(train[i].path.name, names[train[i].label], round(d, 4)) for i, d in v]
                           for k, v in neighbours.items()},
            "figures": [f"{stem}_explained.png", f"{stem}_neighbours.png"]}


def _neighbour_figure(image, stem, neighbours, train, names, pre, path: Path) -> None:
    plt = _plt()
    rows = list(neighbours.items())
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.2 * len(rows)))
    for r, (kind, found) in enumerate(rows):
        axes[r, 0].imshow(image)
        axes[r, 0].set_title(f"{stem}\n{kind.replace('_', ' ')}", fontsize=8)
        for c, (i, d) in enumerate(found, start=1):
            axes[r, c].imshow(pre(train[i].path))
            axes[r, c].set_title(f"{train[i].path.stem}: {names[train[i].label]}\nd={d:.3f}", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    save_small_png(fig, path, dpi=70)
    plt.close(fig)


def report_run(run_dir: Path, dataset: Flowers102, out: Path | None = None, gallery: int = 12) -> Path:
    """The error-analysis report of a run on the test split; returns the Markdown index."""
    config, model = load_run(run_dir)
    out = out or run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    logits, labels = run_logits(run_dir, model, dataset, "test", config)
    probs = softmax(logits)
    predicted = probs.argmax(1)
    names = dataset.class_names
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    per_class = sorted(metrics["per_class"], key=lambda c: c["f1"])
    cm = np.zeros((len(names), len(names)), np.int64)
    np.add.at(cm, (labels, predicted), 1)
    np.fill_diagonal(cm, 0)
    pairs = sorted(((int(cm[t, p]), t, p) for t, p in zip(*np.nonzero(cm))), reverse=True)[:10]
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:gallery]  # the most confident mistakes
    gallery_png = _gallery(run_dir, model, dataset, config, wrong, probs, labels, out / "misclassified_gallery.png")
    lines = [f"# Error analysis: {config.preset} ({config.protocol} protocol), test split\n",
             f"top-1 {metrics['accuracy']:.2%}, top-5 {metrics['top5_accuracy']:.2%}, "
             f"{len(np.flatnonzero(predicted != labels))} of {len(labels)} misclassified.\n",
             "## Worst classes (by F1)\n", "| class | precision | recall | F1 | test images |", "|---|---|---|---|---|"]
    lines += [f"| {c['class']} | {c['precision']:.2f} | {c['recall']:.2f} | {c['f1']:.2f} | {c['support']} |"
              for c in per_class[:10]]
    lines += ["\n## Most confused pairs\n", "| true class | predicted as | images |", "|---|---|---|"]
    lines += [f"| {names[t]} | {names[p]} | {n} |" for n, t, p in pairs]
    lines += ["\n## Most confident mistakes\n",
              "Each: the photo with Grad-CAM for the wrong class, its nearest training image of the wrongly "
              "predicted class (Euclidean, pooled features), and the top-3 probabilities.\n",
              f"![gallery]({gallery_png.name})\n", "## All classes\n",
              "| class | precision | recall | F1 | test images |", "|---|---|---|---|---|"]
    lines += [f"| {c['class']} | {c['precision']:.2f} | {c['recall']:.2f} | {c['f1']:.2f} | {c['support']} |"
              for c in metrics["per_class"]]
    index = out / "report.md"
    index.write_text("\n".join(lines) + "\n")
    return index


def _gallery(run_dir, model, dataset, config, wrong, probs, labels, path: Path) -> Path:
    spec = get_backbone(config.backbone)
    pre = Preprocess(config.size, config.crop_fraction)
    test = list(dataset.test)
    emb, train = train_embeddings(run_dir, model, dataset, config)
    from .explain import embedding_model

    names = dataset.class_names
    images = load_arrays([test[i] for i in wrong], pre, "loading mistakes")
    queries = embedding_model(model).predict(images.astype(np.float32), verbose=0)
    plt = _plt()
    fig, axes = plt.subplots(len(wrong), 2, figsize=(7, 3.6 * max(len(wrong), 1)), squeeze=False)
    for row, (i, image, query) in enumerate(zip(wrong, images, queries)):
        pred = int(probs[i].argmax())
        heat, _ = gradcam(model, spec.gradcam, image, pred)
        top3 = ", ".join(f"{names[c]} {probs[i, c]:.2f}" for c in np.argsort(-probs[i])[:3])
        axes[row, 0].imshow(overlay(image, heat))
        axes[row, 0].set_title(f"{test[i].path.stem}: true {names[labels[i]]}\n{top3}", fontsize=7)
        (j, d), = emb.nearest(query, 1, "euclidean", within_class=pred)
        axes[row, 1].imshow(pre(train[j].path))
        axes[row, 1].set_title(f"nearest {names[pred]} in training: {train[j].path.stem} (d={d:.2f})", fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    save_small_png(fig, path, dpi=60)
    plt.close(fig)
    return path
