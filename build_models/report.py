"""Error analysis of a run: per-class table, worst classes, confused pairs, a gallery of mistakes,
and single-image explanation figures (Grad-CAM, LIME, nearest training images), with a Markdown index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flowercam.model.preprocess import Preprocess
from flowercam.model.scores import softmax

from .backbones import get_backbone
from .data import Flowers102, Sample
from .explain import Embeddings, gradcam, lime_explanation, lime_panel, overlay
from .images import labels_of, load_arrays
from .run import load_run, run_logits

TITLE_SIZE = 12  # points; figures are saved at 72-80 dpi, so this reads at README width


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panel_grid(rows: list[list[tuple[np.ndarray, str]]], panel_in: float = 3.4):
    """A figure of photo panels, each with its title, laid out so that no title is cut (constrained layout)."""
    plt = _plt()
    columns = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(panel_in * columns, (panel_in + 0.7) * len(rows)),
                             squeeze=False, layout="constrained")
    for ax_row, row in zip(axes, rows):
        for ax, (image, title) in zip(ax_row, row):
            ax.imshow(image)
            ax.set_title(title, fontsize=TITLE_SIZE)
    for ax in axes.ravel():
        ax.axis("off")
    return fig


def save_figure(fig, path: Path, dpi: int = 80) -> None:
    """Save a figure of photos: JPEG (quality 90) keeps photos and smooth heatmaps small without the colour
    bands of a 256-colour PNG; ``.png`` paths get a full-colour PNG."""
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    _plt().close(fig)
    with Image.open(buffer) as image:
        rgb = image.convert("RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        rgb.save(path, quality=90, optimize=True, progressive=True)
    else:
        rgb.save(path, optimize=True)


def run_calibration(run_dir: Path) -> tuple[float, str]:
    """The softmax temperature ``flowercam`` uses for this run (from its exported int8 sidecar) and how figures
    name the probabilities; T = 1, named uncalibrated, for a run not exported yet."""
    for sidecar in sorted((run_dir / "export").glob("*_int8.json")):
        t = float(json.loads(sidecar.read_text())["temperature"])
        return t, f"p calibrated as flowercam reports it (T = {t:.2f})"
    return 1.0, "p uncalibrated (T = 1; export the run to calibrate)"


def train_embeddings(run_dir: Path, model, dataset: Flowers102, config) -> tuple[Embeddings, list[Sample]]:
    """Embeddings of the run's training images, cached in the run folder."""
    from .samples import training_samples

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
    temperature, p_name = run_calibration(run_dir)
    probs = softmax(model.predict(image[np.newaxis].astype(np.float32), verbose=0), temperature)[0]
    predicted = int(probs.argmax())
    names = dataset.class_names
    out.mkdir(parents=True, exist_ok=True)
    stem = image_path.stem
    classes = [predicted] + ([true_label] if true_label is not None and true_label != predicted else [])
    explanation = lime_explanation(model, image, tuple(classes), lime_samples)
    true_name = names[true_label] if true_label is not None else "not given"
    panels = [(image, f"{stem}\ntrue: {true_name}\npredicted: {names[predicted]}")]
    for cls in classes:
        heat, _ = gradcam(model, spec.gradcam, image, cls)
        role = "predicted" if cls == predicted else "true"
        panels += [(overlay(image, heat), f"Grad-CAM, {role}:\n{names[cls]} {probs[cls]:.1%}"),
                   (lime_panel(image, explanation, cls)[0], f"LIME, {role} (green: for it)\n{names[cls]}")]
    fig = panel_grid([panels])
    fig.suptitle(p_name, fontsize=TITLE_SIZE - 1)
    save_figure(fig, out / f"{stem}_explained.jpg")
    emb, train = train_embeddings(run_dir, model, dataset, config)
    from .heads import embedding_model

    query = embedding_model(model).predict(image[np.newaxis].astype(np.float32), verbose=0)[0]
    neighbours = {"euclidean_predicted_class": emb.nearest(query, 3, "euclidean", within_class=predicted),
                  "euclidean_all": emb.nearest(query, 3, "euclidean"), "cosine_all": emb.nearest(query, 3, "cosine")}
    rows = [[(image, f"{stem}\nnearest: {kind.replace('_', ' ')}")] +
            [(pre(train[i].path), f"{train[i].path.stem}\n{names[train[i].label]}, d = {d:.2f}") for i, d in found]
            for kind, found in neighbours.items()]
    save_figure(panel_grid(rows, panel_in=3.0), out / f"{stem}_neighbours.jpg", dpi=72)
    top3 = np.argsort(-probs)[:3]
    return {"image": str(image_path), "predicted": names[predicted],
            "true": names[true_label] if true_label is not None else None,
            "top3": [(names[i], round(float(probs[i]), 4)) for i in top3], "probabilities": p_name,
            "neighbours": {k: [(train[i].path.name, names[train[i].label], round(d, 4)) for i, d in v]
                           for k, v in neighbours.items()},
            "figures": [f"{stem}_explained.jpg", f"{stem}_neighbours.jpg"]}


def report_run(run_dir: Path, dataset: Flowers102, out: Path | None = None, gallery: int = 12) -> Path:
    """The error-analysis report of a run on the test split; returns the Markdown index."""
    config, model = load_run(run_dir)
    out = out or run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    logits, labels = run_logits(run_dir, model, dataset, "test", config)
    temperature, p_name = run_calibration(run_dir)
    probs = softmax(logits, temperature)
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
    gallery_file = out / "misclassified_gallery.jpg"
    gallery_file.unlink(missing_ok=True)
    if len(wrong):
        _gallery(run_dir, model, dataset, config, wrong, probs, labels, gallery_file)
    from .folders import MIN_TRAIN
    from .samples import training_samples

    trained = np.bincount(labels_of(training_samples(config, dataset)[0]), minlength=len(names))
    weak = [f"{names[c]} ({trained[c]})" for c in np.flatnonzero(trained < MIN_TRAIN)]
    lines = [f"# Error analysis: {config.preset} ({config.protocol} protocol), test split\n",
             f"top-1 {metrics['accuracy']:.2%}, top-5 {metrics['top5_accuracy']:.2%}, "
             f"{len(np.flatnonzero(predicted != labels))} of {len(labels)} misclassified.\n",
             *([f"**Weak classes**, trained on fewer than {MIN_TRAIN} photos (augmentation helps, more photos help "
                f"more): {', '.join(weak)}.\n"] if weak else []),
             "## Worst classes (by F1)\n", "| class | precision | recall | F1 | test images |", "|---|---|---|---|---|"]
    lines += [f"| {c['class']} | {c['precision']:.2f} | {c['recall']:.2f} | {c['f1']:.2f} | {c['support']} |"
              for c in per_class[:10]]
    lines += ["\n## Most confused pairs\n", "| true class | predicted as | images |", "|---|---|---|"]
    lines += [f"| {names[t]} | {names[p]} | {n} |" for n, t, p in pairs]
    lines += ["\n## Most confident mistakes\n",
              *([f"Each: the photo with Grad-CAM for the wrong class and the top-3 ({p_name}), and its nearest "
                 "training image of the wrongly predicted class (Euclidean, pooled features).\n",
                 f"![gallery]({gallery_file.name})\n"] if len(wrong) else
                ["No mistakes on the test split.\n" if gallery else "(gallery not asked for: --gallery 0)\n"]),
              "## All classes\n",
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
    from .heads import embedding_model

    names = dataset.class_names
    images = load_arrays([test[i] for i in wrong], pre, "loading mistakes")
    queries = embedding_model(model).predict(images.astype(np.float32), verbose=0)
    rows = []
    for i, image, query in zip(wrong, images, queries):
        pred = int(probs[i].argmax())
        heat, _ = gradcam(model, spec.gradcam, image, pred)
        top3 = "\n".join(f"{names[c]} {probs[i, c]:.1%}" for c in np.argsort(-probs[i])[:3])
        (j, d), = emb.nearest(query, 1, "euclidean", within_class=pred)
        rows.append([(overlay(image, heat), f"{test[i].path.stem}, true: {names[labels[i]]}\n{top3}"),
                     (pre(train[j].path), f"nearest {names[pred]}\nin training: {train[j].path.stem}\n"
                                          f"d = {d:.2f}")])
    save_figure(panel_grid(rows, panel_in=3.6), path, dpi=72)
    return path
